"""The scheduler Lambda and the minute tick that drives it (and the reporter)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.lambdas import Layers, MailProxyFunction
from infra.constructs.queues import Queues
from infra.constructs.storage import Storage

SCHEDULER_TIMEOUT = Duration.seconds(60)
TICK = events.Schedule.rate(Duration.minutes(1))


class Scheduler(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        layers: Layers,
        environment: dict[str, str],
        storage: Storage,
        queues: Queues,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = MailProxyFunction(
            self,
            "Handler",
            name="scheduler",
            prefix=prefix,
            layers=layers,
            environment=environment,
            timeout=SCHEDULER_TIMEOUT,
            memory_size=512,
        )
        fn = self.handler.function
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
            description="mailproxy: due scheduled sends, lost messages, delivery reports",
            schedule=TICK,
            targets=[targets.LambdaFunction(fn, retry_attempts=0) for fn in functions],
        )
