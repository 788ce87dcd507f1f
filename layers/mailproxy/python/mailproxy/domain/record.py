"""A stored message as the API shows it (SPEC.md's MessageRecord)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailproxy.domain.priority import Priority
from mailproxy.domain.status import EventType, MessageStatus


def event_id_for(
    event_ts: float, message_id: str, attempt: int | str, event_type: EventType
) -> str:
    """Sorts by time within a tenant, and is the same for the same outcome of the same attempt,
    so writing it twice cannot make two events."""
    return f"{int(event_ts * 1000):013d}#{message_id}#{attempt}#{event_type.value}"


def iso_utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class MessageEvent:
    event_id: str
    message_id: str
    event_type: EventType
    event_ts: float
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reported_ts: float | None = None

    def to_api(self) -> dict[str, Any]:
        return _without_nulls(
            {
                "event_id": self.event_id,
                "event_type": self.event_type.value,
                "event_ts": int(self.event_ts),
                "description": self.description,
                "metadata": self.metadata or None,
                "reported_ts": _int_or_none(self.reported_ts),
            }
        )


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

    def to_api(
        self, payload: dict[str, Any] | None, history: list[MessageEvent] | None = None
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "pk": self.pk,
            "id": self.id,
            "tenant_id": self.tenant_id,
            "account_id": self.account_id,
            "priority": int(self.priority),
            "batch_code": self.batch_code,
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
            "deferred_ts": _int_or_none(self.deferred_ts) if not self.status.is_final else None,
            "sent_ts": _int_or_none(self.sent_ts),
            "error_ts": _int_or_none(self.error_ts),
            "error": self.error if self.status is MessageStatus.ERROR else None,
            "reported_ts": _int_or_none(self.reported_ts),
            "message": public_payload(payload) if payload is not None else {},
            "status": self.status.value,
            "refused_recipients": self.refused or None,
        }
        if history is not None:
            record["history"] = [event.to_api() for event in history]
        return _without_nulls(record)


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


def _without_nulls(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def public_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A stored payload as GET /messages shows it: attachment contents and credentials left
    out (an inline attachment keeps only its "base64:" marker)."""
    attachments = payload.get("attachments")
    if not attachments:
        return payload
    shown = []
    for attachment in attachments:
        item = dict(attachment)
        path = str(item.get("storage_path", ""))
        if item.get("fetch_mode") == "base64" or path.startswith("base64:"):
            item["storage_path"] = "base64:"
        auth = item.get("auth")
        if isinstance(auth, dict):
            item["auth"] = {k: v for k, v in auth.items() if k in ("method", "user")}
        shown.append(item)
    return payload | {"attachments": shown}
