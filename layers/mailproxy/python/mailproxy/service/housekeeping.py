"""Removing messages: delete-messages (cancel what has not been sent) and cleanup-messages
(finished messages whose events were all reported)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mailproxy.auth import Principal, scoped_tenant
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import FieldProblem, InvalidRequest
from mailproxy.domain.metrics import Count, Counts
from mailproxy.domain.reporting import RETENTION_SECONDS
from mailproxy.service.ports import HousekeepingStore

DEFAULT_RETENTION_SECONDS = RETENTION_SECONDS


@dataclass
class DeleteResult:
    removed: int = 0
    not_found: list[str] = field(default_factory=list)
    # Ids a sender is delivering at this moment: removing them could not stop the mail.
    unauthorized: list[str] = field(default_factory=list)


def tenant_in_scope(caller: Principal, tenant_id: str | None) -> str:
    scoped = scoped_tenant(caller, tenant_id)
    if scoped is None:
        raise InvalidRequest([FieldProblem(("query", "tenant_id"), "Field required", "missing")])
    return scoped


def delete_messages(
    ids: list[str],
    caller: Principal,
    tenant_id: str | None,
    store: HousekeepingStore,
    clock: Clock,
) -> DeleteResult:
    scoped = tenant_in_scope(caller, tenant_id)
    result = DeleteResult()
    now = clock()
    unique = list(dict.fromkeys(ids))
    states = store.get_states(scoped, unique) if unique else {}
    cancelled: Counts = Counter()
    for message_id in unique:
        outcome = store.delete_message(scoped, message_id, now)
        if outcome == "removed":
            result.removed += 1
            state = states.get(message_id)
            if state is not None and not state.status.is_final:
                cancelled[(scoped, state.account_id or "", Count.REMOVED)] += 1
        elif outcome == "not_found":
            result.not_found.append(message_id)
        else:
            result.unauthorized.append(message_id)
    if cancelled:
        store.add_counts(cancelled)
    return result


def cleanup_messages(
    caller: Principal,
    tenant_id: str | None,
    older_than_seconds: int | None,
    store: HousekeepingStore,
    clock: Clock,
) -> int:
    """Remove finished messages older than the threshold whose events were all reported;
    a message with an unreported event is never removed."""
    scoped = tenant_in_scope(caller, tenant_id)
    threshold = clock() - (
        older_than_seconds if older_than_seconds is not None else DEFAULT_RETENTION_SECONDS
    )
    candidates = store.finished_before(scoped, threshold)
    if not candidates:
        return 0
    events = store.events_by_message(scoped)
    removed = 0
    for state in candidates:
        history = events.get(state.id, [])
        if any(event.reported_ts is None for event in history):
            continue
        if store.remove_finished(scoped, state.id, [event.event_id for event in history]):
            removed += 1
    return removed
