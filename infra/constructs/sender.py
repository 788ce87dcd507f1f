"""The sender Lambda, fed by one SQS event source per priority queue."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources

from infra.constructs.lambdas import ProxyFunction, Shared
from infra.constructs.nag import acknowledge
from infra.constructs.queues import sender_timeout
from infra.constructs.storage import (
    FILE_LINKS,
    LARGE_FILE_KEYS,
    TENANT_LARGE_FILE_KEYS,
)
from infra.resources import QUEUES

BATCH_SIZE = 10
# Every table but the download links': the rate-limit counters are the sender's alone.
SENDER_TABLES = ["tenants", "accounts", "messages", "bodies", "events", "counters", "metrics"]
SENDER_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)


class Sender(ProxyFunction):
    NAME = "sender"
    TIMEOUT = sender_timeout()

    def wire(self, fn: lambda_.Function, shared: Shared) -> None:
        storage, queues = shared.storage, shared.queues
        attachment_buckets = shared.attachment_buckets
        # By key only (mailproxy.service.delivery.DeliveryStore): no query, scan or delete.
        storage.grant_items(fn, SENDER_TABLES, SENDER_ACTIONS)
        # Download links of large files are written, never read back, by the sender.
        storage.grant_items(fn, [FILE_LINKS], ("dynamodb:PutItem",))
        # The instance settings, for bounce_return_path (the envelope sender): read only.
        storage.grant_items(fn, ["settings"], ("dynamodb:GetItem",))
        for queue in queues.all_queues:  # deferrals and retries re-enqueue; wake the reporter
            queue.grant(fn, "sqs:SendMessage")
        storage.secrets_key.grant_decrypt(fn)
        storage.grant_payloads(fn, ["s3:GetObject"])
        # Large attachments rewritten into links (large_file_config.action rewrite).
        storage.grant_payloads(fn, ["s3:PutObject"], LARGE_FILE_KEYS)
        self.handler.acknowledge_payload_objects(storage)
        self.handler.acknowledge_large_file_objects(storage)
        if attachment_buckets:
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ReadAllowListedAttachments",
                    actions=["s3:GetObject"],
                    resources=[f"arn:aws:s3:::{name}/*" for name in attachment_buckets],
                )
            )
            # A tenant's storage_url in an allow-listed bucket receives its large files,
            # under the large-files/ttl-<days>d/ part of its prefix only.
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    sid="WriteLargeFilesToAllowListedBuckets",
                    actions=["s3:PutObject"],
                    resources=[
                        f"arn:aws:s3:::{name}/{TENANT_LARGE_FILE_KEYS}"
                        for name in attachment_buckets
                    ],
                )
            )
            for name in attachment_buckets:
                acknowledge(
                    fn,
                    f"AwsSolutions-IAM5[Resource::arn:aws:s3:::{name}/*]",
                    f"s3:// attachments may name any object of {name}, a bucket the "
                    "deployment allow-listed (context s3AttachmentBuckets); read only.",
                )
                acknowledge(
                    fn,
                    f"AwsSolutions-IAM5[Resource::arn:aws:s3:::{name}/{TENANT_LARGE_FILE_KEYS}]",
                    f"Large attachments of tenants whose storage_url is in {name} (allow-listed) "
                    "are written under large-files/ttl-<days>d/ of a prefix the tenant chooses; "
                    "write only.",
                )
        for priority, queue in queues.queues.items():
            fn.add_event_source(
                sources.SqsEventSource(
                    queue,
                    batch_size=BATCH_SIZE,
                    report_batch_item_failures=True,
                    max_concurrency=QUEUES[priority].max_concurrency,
                )
            )
