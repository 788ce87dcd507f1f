"""Delivery reports, the decisions: what an event becomes in a report, when a tenant's sync
endpoint is due a call, how long to wait after a failed one, what the client's answer asks.

The contract (SPEC.md, "Delivery reports"): the proxy POSTs
`{"delivery_report": [{id, sent_ts} | {id, error_ts, error} | {id, deferred_ts, deferred_reason}
| {id, bounce_ts, bounce_type, bounce_code, bounce_reason}]}`
to `client_base_url + client_sync_path`; a 2xx marks those events reported; the client answers
`{ok, queued?, next_sync_after?}`. An active tenant with nothing to report is still called, with
an empty list, every SYNC_INTERVAL_SECONDS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from mailproxy.domain.record import MessageEvent
from mailproxy.domain.status import EventType

SYNC_INTERVAL_SECONDS = 300
# How long a finished, fully reported message stays listed before DynamoDB's TTL removes it.
RETENTION_SECONDS = 7 * 24 * 3600
# Events in one call, and calls to one tenant in one run (a `queued` answer or a backlog of more
# than one call's events asks for more; the next run carries on).
MAX_EVENTS_PER_CALL = 100
MAX_CALLS_PER_RUN = 5
# After a failed call: 60 s, then twice as long after each further failure, up to an hour.
BACKOFF_BASE_SECONDS = 60
BACKOFF_CAP_SECONDS = 3600


class SyncView(Protocol):
    """What the decision reads of a tenant's sync state."""

    @property
    def active(self) -> bool: ...
    @property
    def last_sync_ts(self) -> float | None: ...
    @property
    def next_sync_after(self) -> float | None: ...
    @property
    def sync_retry_after(self) -> float | None: ...


@dataclass(frozen=True)
class SyncState:
    """A tenant's delivery-report bookkeeping as stored: the last successful sync, the quiet
    time the client asked for (do-not-disturb), the failures in a row and the backoff they
    earned, and the lease of the sync in flight, if any."""

    tenant_id: str
    active: bool = True
    last_sync_ts: float | None = None
    next_sync_after: float | None = None
    sync_failures: int = 0
    sync_retry_after: float | None = None
    sync_lease_until: float | None = None


def report_entry(event: MessageEvent) -> dict[str, Any] | None:
    """The report line of one event, in the contract's fields; None for an event the contract
    has no line for (`ambiguous`, beyond it): such an event is marked reported with its batch."""
    if event.event_type is EventType.SENT:
        return {"id": event.message_id, "sent_ts": int(event.event_ts)}
    if event.event_type is EventType.ERROR:
        return {
            "id": event.message_id,
            "error_ts": int(event.event_ts),
            "error": event.description or "",
        }
    if event.event_type is EventType.DEFERRED:
        due = _number(event.metadata.get("deferred_ts"))
        reason = event.metadata.get("deferred_reason")
        return {
            "id": event.message_id,
            "deferred_ts": int(due if due is not None else event.event_ts),
            "deferred_reason": reason if isinstance(reason, str) else (event.description or ""),
        }
    if event.event_type is EventType.BOUNCE:
        return {
            "id": event.message_id,
            "bounce_ts": int(event.event_ts),
            "bounce_type": event.metadata.get("bounce_type"),
            "bounce_code": event.metadata.get("bounce_code"),
            "bounce_reason": event.metadata.get("bounce_reason", event.description or ""),
        }
    return None


def is_final(event: MessageEvent) -> bool:
    """An outcome that ends the message: reporting it stamps the message reported too."""
    return event.event_type in (EventType.SENT, EventType.ERROR)


def sync_due(tenant: SyncView, has_events: bool, now: float, force: bool) -> bool:
    """Whether the tenant's sync endpoint is to be called now.

    Never for an inactive tenant. `force` (a run-now with the tenant's own token) calls at once,
    through do-not-disturb and backoff. Otherwise events are due unless a failed call put the
    tenant in backoff (they override the client's next_sync_after); with nothing to report,
    the heartbeat is due SYNC_INTERVAL_SECONDS after the last successful sync, unless in
    do-not-disturb or in backoff."""
    if not tenant.active:
        return False
    if force:
        return True
    if tenant.sync_retry_after is not None and tenant.sync_retry_after > now:
        return False
    if has_events:
        return True
    if tenant.next_sync_after is not None and tenant.next_sync_after > now:
        return False
    return tenant.last_sync_ts is None or tenant.last_sync_ts + SYNC_INTERVAL_SECONDS <= now


def backoff_seconds(failures: int) -> int:
    """How long to leave a tenant alone after `failures` failed calls in a row."""
    if failures <= 0:
        return 0
    # The cap is reached at the 7th failure; the exponent stops there (no huge powers).
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(failures - 1, 16))


@dataclass(frozen=True)
class SyncAnswer:
    """What a client's 2xx answer asks: `queued` > 0, call again now; `next_sync_after`
    (epoch seconds), no call before then unless there are events to report."""

    queued: int = 0
    next_sync_after: float | None = None


def read_answer(body: Any) -> SyncAnswer:
    """The client's answer, read leniently: fields of the wrong type, or a body that is not a
    JSON object, count as absent (the 2xx alone is what marks events reported)."""
    if not isinstance(body, dict):
        return SyncAnswer()
    queued = body.get("queued")
    return SyncAnswer(
        queued=queued if isinstance(queued, int) and not isinstance(queued, bool) else 0,
        next_sync_after=_number(body.get("next_sync_after")),
    )


def sync_url(client_base_url: str, client_sync_path: str) -> str:
    return client_base_url.rstrip("/") + "/" + client_sync_path.lstrip("/")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
