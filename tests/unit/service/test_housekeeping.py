"""delete-messages and cleanup-messages against the in-memory store: a message a sender
holds is never removed, nor a finished one with an unreported event."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailproxy.auth import ADMIN, Principal
from mailproxy.domain.errors import InvalidRequest
from mailproxy.domain.metrics import Count
from mailproxy.domain.priority import Priority
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.status import EventType, MessageStatus
from mailproxy.service.housekeeping import cleanup_messages, delete_messages
from tests.support.fakes import T0, FakeClock, InMemoryStore

ACME = Principal("acme")
DAY = 86_400


def state(message_id: str, status: MessageStatus, **fields: object) -> MessageState:
    return replace(
        MessageState("acme", message_id, status, Priority.MEDIUM, "t", T0, T0, account_id="main"),
        **fields,  # type: ignore[arg-type]
    )


def store_with(*states: MessageState) -> InMemoryStore:
    store = InMemoryStore()
    for item in states:
        store.states[(item.tenant_id, item.id)] = item
    return store


def test_deleting_removes_waiting_messages_names_unknown_ones_and_spares_one_in_flight() -> None:
    # Given a waiting message and one a sender holds under a live lease
    store = store_with(
        state("m1", MessageStatus.PENDING),
        state("m2", MessageStatus.SENDING, lease_until=T0 + 60),
    )
    # When all three ids (one unknown) are deleted
    result = delete_messages(["m1", "m2", "m3", "m1"], ACME, None, store, FakeClock())
    # Then the waiting one is removed (and counted as removed), the others said so
    assert (result.removed, result.not_found, result.unauthorized) == (1, ["m3"], ["m2"])
    assert set(store.states) == {("acme", "m2")}
    assert store.counts == {("acme", "main", Count.REMOVED): 1}


def test_the_admin_must_name_the_tenant_whose_messages_go() -> None:
    with pytest.raises(InvalidRequest):
        delete_messages(["m1"], ADMIN, None, InMemoryStore(), FakeClock())


def test_cleanup_removes_old_finished_messages_whose_events_were_all_reported() -> None:
    # Given, two days on, a sent message reported, one not reported, and one still waiting
    store = store_with(
        state("done", MessageStatus.SENT),
        state("unheard", MessageStatus.SENT),
        state("waiting", MessageStatus.PENDING),
    )
    store.events["acme"] = [
        MessageEvent("e1", "done", EventType.SENT, T0, reported_ts=T0 + 1),
        MessageEvent("e2", "unheard", EventType.SENT, T0),
    ]
    clock = FakeClock(T0 + 2 * DAY)
    # When messages older than a day are cleaned up
    removed = cleanup_messages(ACME, None, DAY, store, clock)
    # Then only the reported one is gone, with its events
    assert removed == 1
    assert set(store.states) == {("acme", "unheard"), ("acme", "waiting")}
    assert [event.event_id for event in store.events["acme"]] == ["e2"]


def test_cleanup_spares_what_is_younger_than_the_threshold() -> None:
    store = store_with(state("done", MessageStatus.SENT))
    assert cleanup_messages(ACME, None, DAY, store, FakeClock(T0 + 60)) == 0
