"""The scheduler's minute tick, and releasing what a suspension held.

A tick queues every message on the scheduler's index that falls due within the next minute,
with the exact remaining delay: sends scheduled beyond 15 minutes, retries and deferrals
longer than that, messages whose queueing was never confirmed (the API died between its two
writes) and messages whose sender's lease ran out (the sender died). Each is queued under a
ticket it has, its watch moved on first and only if unchanged (two ticks do not both queue
it; a claim takes it off the watch). Work per tick is bounded; what is left waits for the next.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailproxy.domain.clock import Clock
from mailproxy.domain.record import MessageState
from mailproxy.domain.scheduling import (
    ENQUEUE_CONFIRM_GRACE_SECONDS,
    LOOKAHEAD_SECONDS,
    all_due_shards,
)
from mailproxy.domain.status import MessageStatus
from mailproxy.domain.submission import queue_delay
from mailproxy.queueing import Enqueue, Reference
from mailproxy.service.ports import Queues, SchedulingStore, TakesDue

PER_SHARD_LIMIT = 250


@dataclass
class TickResult:
    queued: int = 0
    superseded: int = 0  # changed between the read and the write: left as they are


def tick(
    store: SchedulingStore,
    queues: Queues,
    *,
    clock: Clock,
    limit_per_shard: int = PER_SHARD_LIMIT,
) -> TickResult:
    now = clock()
    due: list[MessageState] = []
    for shard in all_due_shards():
        due += store.due_messages(shard, now + LOOKAHEAD_SECONDS, limit_per_shard)
    return _requeue(due, store, queues, now)


def release_held(
    tenant_id: str,
    batch_code: str | None,
    store: SchedulingStore,
    queues: Queues,
    *,
    clock: Clock,
) -> TickResult:
    """Queue at once what a suspension of the tenant (or of one batch) kept aside."""
    now = clock()
    held = [
        state
        for state in store.held_messages(tenant_id)
        if batch_code is None or state.batch_code == batch_code
    ]
    return _requeue(held, store, queues, now)


def release_message(
    state: MessageState,
    store: TakesDue,
    queues: Queues,
    now: float,
) -> bool:
    """Queue one held message at once; False when it changed since it was read."""
    return _requeue([state], store, queues, now).queued == 1


def _requeue(
    states: list[MessageState],
    store: TakesDue,
    queues: Queues,
    now: float,
) -> TickResult:
    """Queue each message again under the ticket it has, watched a while longer.

    The ticket stays: a reference queued under a new one could reach a sender before the
    ticket moved, and be dropped as stale while the message waited for it. With the ticket
    it has, the reference is live at once, and a second one (the first still queued behind
    a backlog) is harmless: one claim wins, the other finds the message taken. The watch is
    moved first and the reference queued after: a reference that fails to queue is queued
    again when the watch comes round, and one that waits long in a queue is not starved by
    new tickets. A sender's claim takes the message off this watch."""
    result = TickResult()
    queued: list[Enqueue] = []
    for state in states:
        waits_until = _waits_until(state)
        watch_at = max(now, waits_until or now) + ENQUEUE_CONFIRM_GRACE_SECONDS
        if store.take_due(state, watch_at):
            queued.append(Enqueue(_reference(state, state.ticket), queue_delay(waits_until, now)))
            result.queued += 1
        else:
            result.superseded += 1
    if queued:
        queues.send(queued)
    return result


def _reference(state: MessageState, ticket: str) -> Reference:
    return Reference(
        state.tenant_id,
        state.id,
        ticket,
        state.account_id,
        state.priority,
        state.retries,
        submitted_at=state.created_at,
    )


def _waits_until(state: MessageState) -> float | None:
    """A scheduled send, retry or deferral waits for its time; a message recovered from a
    lost queueing or a dead sender goes now."""
    if state.status in (MessageStatus.SCHEDULED, MessageStatus.DEFERRED):
        return state.deferred_ts
    return None
