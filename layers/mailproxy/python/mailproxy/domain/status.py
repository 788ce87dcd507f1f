"""The life of a message, as a set of states and the transitions the system allows."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    PENDING = "pending"  # in its priority queue, waiting for a sender
    SCHEDULED = "scheduled"  # waiting for its deferred_ts
    DEFERRED = "deferred"  # waiting for a retry or the end of a rate-limit window
    SENDING = "sending"  # claimed by one sender, under a lease
    SENT = "sent"
    ERROR = "error"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({MessageStatus.SENT, MessageStatus.ERROR})
# States in which a sender may claim the message, and a client may still replace it.
WAITING_STATUSES = frozenset(
    {MessageStatus.PENDING, MessageStatus.SCHEDULED, MessageStatus.DEFERRED}
)


class EventType(StrEnum):
    SENT = "sent"
    ERROR = "error"
    DEFERRED = "deferred"
    AMBIGUOUS = "ambiguous"
    BOUNCE = "bounce"  # a delivery status notification came back (domain/bounces.py)
