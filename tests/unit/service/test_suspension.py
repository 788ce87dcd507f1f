"""Suspending and activating a tenant's sending, against the in-memory store and queues."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailproxy.auth import Principal
from mailproxy.domain.errors import BadRequest, NotFound
from mailproxy.domain.priority import Priority
from mailproxy.domain.record import MessageState
from mailproxy.domain.scheduling import held_shard
from mailproxy.domain.status import MessageStatus
from mailproxy.domain.tenant import Tenant
from mailproxy.service.suspension import SuspensionResult, change_suspension
from tests.support.fakes import T0, FakeClock, FakeQueues, InMemoryStore

ACME = Principal("acme")


def world() -> tuple[InMemoryStore, FakeQueues, FakeClock]:
    store = InMemoryStore()
    store.create_tenant(Tenant(id="acme", created_at=T0, updated_at=T0))
    return store, FakeQueues(), FakeClock()


def test_suspending_a_batch_records_it_and_counts_its_pending_messages() -> None:
    store, queues, clock = world()
    store.states[("acme", "m1")] = MessageState(
        "acme", "m1", MessageStatus.PENDING, Priority.MEDIUM, "t1", T0, T0, batch_code="news"
    )
    answer = change_suspension("suspend", ACME, None, "news", store, clock, queues)
    assert answer == SuspensionResult(
        tenant_id="acme", batch_code="news", suspended_batches=["news"], pending_messages=1
    )
    assert store.tenants["acme"].suspended_batches == {"news"}


def test_activating_releases_what_the_suspension_held_at_once() -> None:
    # Given a suspended tenant with one message held aside
    store, queues, clock = world()
    change_suspension("suspend", ACME, None, None, store, clock, queues)
    store.states[("acme", "m1")] = replace(
        MessageState("acme", "m1", MessageStatus.PENDING, Priority.MEDIUM, "t1", T0, T0),
        due_shard=held_shard("acme"),
        due_at=T0,
    )
    # When it is activated / Then nothing is suspended and the message is queued now
    answer = change_suspension("activate", ACME, None, None, store, clock, queues)
    assert answer.suspended_batches == []
    assert [(e.reference.message_id, e.delay_seconds) for e in queues.sent] == [("m1", 0)]


def test_activating_one_batch_while_all_are_suspended_is_refused() -> None:
    store, queues, clock = world()
    change_suspension("suspend", ACME, None, None, store, clock, queues)
    with pytest.raises(BadRequest):
        change_suspension("activate", ACME, None, "news", store, clock, queues)


def test_an_unknown_tenant_is_not_found() -> None:
    store, queues, clock = world()
    with pytest.raises(NotFound):
        change_suspension("suspend", Principal("ghost"), None, None, store, clock, queues)
