"""Driving the sender's core with a clock the test holds: the real store, queues, SMTP pool
and secret box of `mailproxy.runtime`, and `deliver` called on references read from the
(moto) queues or rebuilt from the stored state, at whatever time the test says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from mailproxy import runtime
from mailproxy.config import current_settings
from mailproxy.domain.record import MessageState
from mailproxy.queueing import Reference, new_ticket
from mailproxy.service.delivery import DeliveryContext, Invocation, Outcome, deliver


@dataclass
class FrozenClock:
    """Epoch seconds that move only when the test moves them (and, with `tick`, by that much
    at each reading: events written by one attempt then keep their order)."""

    now: float
    tick: float = 0.0

    def __call__(self) -> float:
        now = self.now
        self.now += self.tick
        return now

    def set(self, now: float) -> None:
        self.now = now


def delivery_context(clock: FrozenClock) -> DeliveryContext:
    return DeliveryContext(
        store=runtime.store(),
        transport=runtime.smtp_pool(),
        queues=runtime.queues(),
        clock=clock,
        lease_seconds=current_settings().lease_seconds,
        new_ticket=new_ticket,
        secrets=runtime.secret_box(),
    )


def take_queued(queue_url: str) -> list[Reference]:
    """Every visible reference of a queue, removed from it (as a sender that handled them
    would), sorted by message id so that tests are deterministic."""
    sqs = boto3.client("sqs")
    references: list[Reference] = []
    while True:
        batch: list[Any] = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=360
        ).get("Messages", [])
        if not batch:
            break
        references += [Reference.from_json(record["Body"]) for record in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": record["ReceiptHandle"]}
                for index, record in enumerate(batch)
            ],
        )
    return sorted(references, key=lambda reference: reference.message_id)


def state_of(tenant_id: str, message_id: str) -> MessageState:
    state = runtime.store().get_state(tenant_id, message_id)
    assert state is not None, f"no message {tenant_id}/{message_id}"
    return state


def live_reference(tenant_id: str, message_id: str) -> Reference:
    """The reference the store considers live now (what was queued with its last ticket),
    for a test that cannot wait for a delayed SQS record to become visible."""
    state = state_of(tenant_id, message_id)
    return Reference(
        tenant_id, message_id, state.ticket, state.account_id, state.priority, state.retries
    )


def deliver_all(references: list[Reference], clock: FrozenClock) -> dict[str, Outcome]:
    """One sender invocation over these references at the clock's time: outcome by id."""
    invocation = Invocation.prepare(delivery_context(clock), references)
    return {reference.message_id: deliver(reference, invocation) for reference in references}


def deliver_one(reference: Reference, clock: FrozenClock) -> Outcome:
    return deliver_all([reference], clock)[reference.message_id]


def counter_buckets(counters_table: str) -> dict[str, dict[int, int]]:
    """The rate-limit items as stored: sends per sub-bucket index, by counter key."""
    items = boto3.client("dynamodb").scan(TableName=counters_table, ConsistentRead=True)["Items"]
    return {
        item["key"]["S"]: {
            int(bucket): int(sends["N"]) for bucket, sends in item["buckets"]["M"].items()
        }
        for item in items
    }
