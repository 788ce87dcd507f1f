"""What happens to a submitted message, given what is already stored under its id."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mailproxy.domain.priority import Priority
from mailproxy.domain.status import MessageStatus

# SQS cannot hold a message back for longer than this.
MAX_QUEUE_DELAY_SECONDS = 900

REASON_ALREADY_SENT = "already sent"
REASON_BEING_SENT = "being sent"


@dataclass(frozen=True)
class QueuedState:
    """The part of a stored message that decides how a resubmission is handled."""

    status: MessageStatus
    priority: Priority
    ticket: str
    due_ts: float | None  # deferred_ts while waiting
    account_id: str | None = None


@dataclass(frozen=True)
class Accept:
    status: MessageStatus
    due_ts: float | None
    # A fresh reference goes on the queue now (otherwise the stored one keeps its place in
    # line, or the scheduler queues one when the message falls due).
    enqueue: bool
    delay_seconds: int
    # The stored reference stays the live one (a replacement that keeps its place).
    keeps_ticket: bool = False


@dataclass(frozen=True)
class Reject:
    reason: str


def queue_delay(due_ts: float | None, now: float) -> int:
    """Seconds to hold a reference back, up to SQS's limit (a later due time is the
    scheduler's; a reference that still arrives early is handed on)."""
    if due_ts is None or due_ts <= now:
        return 0
    return min(math.ceil(due_ts - now), MAX_QUEUE_DELAY_SECONDS)


def plan_submission(
    existing: QueuedState | None,
    priority: Priority,
    deferred_ts: float | None,
    now: float,
    account_id: str | None = None,
) -> Accept | Reject:
    due_ts = deferred_ts if deferred_ts is not None and deferred_ts > now else None
    status = MessageStatus.SCHEDULED if due_ts is not None else MessageStatus.PENDING
    delay = queue_delay(due_ts, now)
    # Due later than a queue can hold it: the scheduler queues it when it falls due.
    far = due_ts is not None and due_ts - now > MAX_QUEUE_DELAY_SECONDS
    if existing is None:
        return Accept(status, due_ts, enqueue=not far, delay_seconds=delay)
    if existing.status.is_final:
        return Reject(REASON_ALREADY_SENT)
    if existing.status is MessageStatus.SENDING:
        return Reject(REASON_BEING_SENT)
    keeps_place = (
        existing.status in (MessageStatus.PENDING, MessageStatus.SCHEDULED)
        and existing.priority == priority
        and existing.account_id == account_id
        and (due_ts or now) >= (existing.due_ts or 0)
    )
    keeps_ticket = keeps_place and not far
    return Accept(
        status,
        due_ts,
        enqueue=not keeps_ticket and not far,
        delay_seconds=delay,
        keeps_ticket=keeps_ticket,
    )
