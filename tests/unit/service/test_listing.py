"""GET /messages against the in-memory store: a tenant's messages, oldest first."""

from __future__ import annotations

from mailproxy.auth import ADMIN, Principal
from mailproxy.domain.priority import Priority
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.status import EventType, MessageStatus
from mailproxy.service.listing import ListedMessage, list_messages
from tests.support.fakes import T0, InMemoryStore


def store_with_three() -> InMemoryStore:
    store = InMemoryStore()
    for offset, (tenant, message_id, status) in enumerate(
        [
            ("acme", "late", MessageStatus.PENDING),
            ("acme", "early", MessageStatus.SENT),
            ("beta", "other", MessageStatus.PENDING),
        ]
    ):
        created = T0 + (10 if message_id == "late" else offset)
        store.states[(tenant, message_id)] = MessageState(
            tenant, message_id, status, Priority.MEDIUM, "t", created, created
        )
        store.payloads[(tenant, message_id)] = {"subject": message_id}
    store.events["acme"] = [MessageEvent("e1", "early", EventType.SENT, T0 + 1)]
    return store


def listed(caller: Principal, **options: object) -> list[ListedMessage]:
    defaults: dict[str, object] = {
        "tenant_id": None,
        "active_only": False,
        "include_history": False,
        "limit": None,
    }
    return list_messages(caller, store_with_three(), **(defaults | options))  # type: ignore[arg-type]


def test_a_tenant_sees_its_own_messages_oldest_first() -> None:
    assert [row.state.id for row in listed(Principal("acme"))] == ["early", "late"]


def test_the_admin_sees_every_tenant_s_and_can_limit_them() -> None:
    assert [row.state.id for row in listed(ADMIN)] == ["early", "other", "late"]
    assert len(listed(ADMIN, limit=1)) == 1


def test_active_only_leaves_out_finished_messages() -> None:
    assert [row.state.id for row in listed(Principal("acme"), active_only=True)] == ["late"]


def test_the_history_comes_only_when_asked_for() -> None:
    plain = {row.state.id: row for row in listed(Principal("acme"))}
    full = {row.state.id: row for row in listed(Principal("acme"), include_history=True)}
    # None: not asked for (the api then shows no history at all)
    assert plain["early"].history is None
    history = full["early"].history
    assert history is not None
    assert [event.event_id for event in history] == ["e1"]
