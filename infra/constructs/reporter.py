"""The reporter Lambda: ticked every minute, and woken through the wake-ups queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources

from infra.constructs.lambdas import ProxyFunction, Shared

REPORTER_TIMEOUT = Duration.seconds(120)
WAKEUPS_BATCH_SIZE = 10
# Each tenant has at most one sync in flight (a DynamoDB lease); more reporters only contend.
WAKEUPS_MAX_CONCURRENCY = 2
# A tenant's sync state, its unreported events, and the messages they report on.
REPORTER_TABLES = ["tenants", "events", "messages", "bodies"]
REPORTER_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)


class Reporter(ProxyFunction):
    NAME = "reporter"
    TIMEOUT = REPORTER_TIMEOUT

    def wire(self, fn: lambda_.Function, shared: Shared) -> None:
        storage, queues = shared.storage, shared.queues
        # Tenants due a sync, their unreported events (by index), marked reported with their
        # messages (mailproxy.service.reporting.ReportingStore): nothing is created or deleted.
        storage.grant_items(fn, REPORTER_TABLES, REPORTER_ACTIONS, queried_indexes=("events",))
        storage.secrets_key.grant_decrypt(fn)
        fn.add_event_source(
            sources.SqsEventSource(
                queues.wakeups,
                batch_size=WAKEUPS_BATCH_SIZE,
                max_batching_window=Duration.seconds(1),
                max_concurrency=WAKEUPS_MAX_CONCURRENCY,
            )
        )
