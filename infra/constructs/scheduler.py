"""The scheduler Lambda and the minute tick that drives it (and the reporter)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.lambdas import ProxyFunction, Shared

SCHEDULER_TIMEOUT = Duration.seconds(60)
TICK = events.Schedule.rate(Duration.minutes(1))


class Scheduler(ProxyFunction):
    NAME = "scheduler"
    TIMEOUT = SCHEDULER_TIMEOUT

    def wire(self, fn: lambda_.Function, shared: Shared) -> None:
        storage, queues = shared.storage, shared.queues
        # Due messages found by their index, each then taken by a conditional update.
        storage.grant_items(
            fn, ["messages"], ("dynamodb:UpdateItem",), queried_indexes=("messages",)
        )
        for queue in queues.queues.values():
            queue.grant(fn, "sqs:SendMessage")


class MinuteTick(Construct):
    """One EventBridge rule, every minute, invoking each target."""

    def __init__(
        self, scope: Construct, construct_id: str, *, functions: list[lambda_.IFunction]
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            description="mailproxy: due scheduled sends, lost messages, delivery reports, bounces",
            schedule=TICK,
            targets=[targets.LambdaFunction(fn, retry_attempts=0) for fn in functions],
        )
