"""A stored message's state and its events (api/responses.py shows them as SPEC.md's
MessageRecord)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailproxy.domain.priority import Priority
from mailproxy.domain.status import EventType, MessageStatus


def event_id_for(
    event_ts: float, message_id: str, attempt: int | str, event_type: EventType
) -> str:
    """Sorts by time within a tenant, and is the same for the same outcome of the same attempt,
    so writing it twice cannot make two events."""
    return f"{int(event_ts * 1000):013d}#{message_id}#{attempt}#{event_type.value}"


@dataclass(frozen=True)
class MessageEvent:
    event_id: str
    message_id: str
    event_type: EventType
    event_ts: float
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reported_ts: float | None = None


@dataclass(frozen=True)
class MessageState:
    tenant_id: str
    id: str
    status: MessageStatus
    priority: Priority
    ticket: str
    created_at: float
    updated_at: float
    account_id: str | None = None
    batch_code: str | None = None
    deferred_ts: float | None = None
    sent_ts: float | None = None
    error_ts: float | None = None
    error: str | None = None
    reported_ts: float | None = None
    attempts: int = 0
    retries: int = 0
    lease_until: float | None = None
    claim_token: str | None = None
    body_version: str | None = None
    refused: dict[str, str] | None = None
    # On the scheduler's index: which partition, and when to look at the message.
    due_shard: str | None = None
    due_at: float | None = None

    @property
    def pk(self) -> str:
        return f"{self.tenant_id}/{self.id}"
