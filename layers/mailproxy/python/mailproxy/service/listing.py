"""GET /messages: a tenant's messages, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailproxy.auth import Principal, scoped_tenant
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.service.ports import ListingStore, MetricsStore


@dataclass(frozen=True)
class ListedMessage:
    state: MessageState
    payload: dict[str, Any] | None  # None: its payload is gone
    history: list[MessageEvent] | None  # None: not asked for


def list_messages(
    caller: Principal,
    store: ListingStore,
    *,
    tenant_id: str | None,
    active_only: bool,
    include_history: bool,
    limit: int | None,
) -> list[ListedMessage]:
    states = store.list_states(scoped_tenant(caller, tenant_id))
    if active_only:
        states = [state for state in states if not state.status.is_final]
    states.sort(key=lambda state: (state.created_at, state.tenant_id, state.id))
    if limit is not None:
        states = states[:limit]
    by_tenant: dict[str, list[MessageState]] = {}
    for state in states:
        by_tenant.setdefault(state.tenant_id, []).append(state)
    payloads: dict[tuple[str, str], dict[str, Any]] = {}
    history: dict[tuple[str, str], list[MessageEvent]] = {}
    for tenant, tenant_states in by_tenant.items():
        for message_id, payload in store.get_payloads(
            tenant, [state.id for state in tenant_states]
        ).items():
            payloads[(tenant, message_id)] = payload
        if include_history:
            for message_id, events in store.events_by_message(tenant).items():
                history[(tenant, message_id)] = events
    return [
        ListedMessage(
            state,
            payloads.get((state.tenant_id, state.id)),
            history.get((state.tenant_id, state.id), []) if include_history else None,
        )
        for state in states
    ]


def get_message(
    caller: Principal, store: ListingStore, *, tenant_id: str, message_id: str
) -> ListedMessage | None:
    """One message of the caller's tenant with its payload (0.7's messages/get), or None."""
    scoped = scoped_tenant(caller, tenant_id) or tenant_id
    state = store.get_states(scoped, [message_id]).get(message_id)
    if state is None:
        return None
    return ListedMessage(state, store.get_payloads(scoped, [message_id]).get(message_id), None)


def prometheus_text(store: MetricsStore) -> str:
    """GET /metrics: the delivery counters of every tenant and account (no token needed, as
    in genro-mail-proxy; the figures are counts, not content)."""
    # Imported here: prometheus_client (and the asyncio it pulls in) is a tenth of the api's
    # cold start, and only GET /metrics needs it.
    from mailproxy.prometheus import exposition

    names = {tenant.id: tenant.name or tenant.id for tenant in store.list_tenants()}
    accounts = [
        (stored.account.tenant_id or "", stored.account.id) for stored in store.list_accounts(None)
    ]
    return exposition(store.all_counts(), names, accounts)
