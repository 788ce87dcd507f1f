"""The four priority queues (each with its dead-letter queue) and the reporter's wake-ups."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.resources import QUEUES, WAKEUPS_QUEUE, QueueSpec
from mailproxy.domain.priority import Priority

# A message may wait in a DLQ for inspection and redrive for the longest SQS allows.
DLQ_RETENTION = Duration.days(14)
QUEUE_RETENTION = Duration.days(4)
# A wake-up older than a few ticks says nothing the next tick does not.
WAKEUPS_RETENTION = Duration.minutes(15)
# Lambda's advice for SQS event sources: visibility timeout at least 6x the function timeout.
VISIBILITY_TO_TIMEOUT = 6


def sender_timeout() -> Duration:
    """The longest sender run that every priority queue's visibility timeout covers 6 times."""
    shortest = min(spec.visibility_timeout_seconds for spec in QUEUES.values())
    return Duration.seconds(shortest // VISIBILITY_TO_TIMEOUT)


class Queues(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, reporter_timeout: Duration
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlqs: dict[Priority, sqs.Queue] = {}
        self.queues: dict[Priority, sqs.Queue] = {}
        for priority, spec in QUEUES.items():
            self.dlqs[priority], self.queues[priority] = self._pair(spec, prefix)
        self.wakeups = sqs.Queue(
            self,
            "Wakeups",
            queue_name=f"{prefix}-{WAKEUPS_QUEUE}",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=WAKEUPS_RETENTION,
            visibility_timeout=Duration.seconds(
                reporter_timeout.to_seconds() * VISIBILITY_TO_TIMEOUT
            ),
        )
        acknowledge(
            self.wakeups,
            "AwsSolutions-SQS3",
            "A wake-up is a hint: one that keeps failing is dropped when it expires "
            "(15 minutes), and the reporter's minute tick reports the same events anyway.",
        )

    def _pair(self, spec: QueueSpec, prefix: str) -> tuple[sqs.Queue, sqs.Queue]:
        label = spec.priority.label.capitalize()
        dlq = sqs.Queue(
            self,
            f"{label}Dlq",
            queue_name=spec.dlq_physical_name(prefix),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        queue = sqs.Queue(
            self,
            label,
            queue_name=spec.physical_name(prefix),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=QUEUE_RETENTION,
            visibility_timeout=Duration.seconds(spec.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dlq, max_receive_count=spec.max_receive_count
            ),
        )
        return dlq, queue

    @property
    def all_queues(self) -> list[sqs.Queue]:
        return [*self.queues.values(), self.wakeups]

    def urls(self) -> dict[Priority | str, str]:
        urls: dict[Priority | str, str] = {p: q.queue_url for p, q in self.queues.items()}
        urls[WAKEUPS_QUEUE] = self.wakeups.queue_url
        return urls
