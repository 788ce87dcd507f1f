"""add-messages against the in-memory store and queues: what is stored, what is queued, and
what is refused (no AWS)."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from mailproxy.auth import ADMIN, Principal, Unauthorized
from mailproxy.domain.account import Account
from mailproxy.domain.errors import BadRequest, InvalidRequest
from mailproxy.domain.message import AddMessagesRequest
from mailproxy.domain.metrics import Count
from mailproxy.domain.status import MessageStatus
from mailproxy.service.submission import SubmissionPolicy, add_messages
from tests.support.fakes import FakeClock, FakeQueues, InMemoryStore

ACME = Principal("acme")


def message(id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": id,
        "account_id": "main",
        "from": "app@acme.test",
        "to": ["user@example.test"],
        "subject": f"Subject {id}",
        "body": f"Body of {id}",
    } | overrides


class World:
    """A tenant acme with its account main, and what add-messages reaches."""

    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.store.put_account(
            Account(id="main", tenant_id="acme", host="smtp.test", port=587), None, False, 0.0
        )
        self.queues = FakeQueues()
        self.clock = FakeClock()
        self._tickets = count(1)

    def add(self, *messages: dict[str, Any], caller: Principal = ACME, **request: Any) -> Any:
        body = AddMessagesRequest.model_validate({"messages": list(messages)} | request)
        return add_messages(
            body,
            caller,
            self.store,
            self.queues,
            self.clock,
            lambda: f"t{next(self._tickets)}",
            SubmissionPolicy(),
        )


def test_an_accepted_message_is_stored_pending_then_queued_and_counted() -> None:
    world = World()
    result = world.add(message("m1"))
    assert (result.queued, result.rejected) == (1, [])
    state = world.store.states[("acme", "m1")]
    assert state.status is MessageStatus.PENDING
    # Then its reference is queued under the ticket it was stored with, and confirmed
    [queued] = world.queues.sent
    assert (queued.reference.message_id, queued.reference.ticket) == ("m1", state.ticket)
    assert [ref.message_id for ref in world.store.confirmed] == ["m1"]
    assert world.store.counts[("acme", "main", Count.SUBMITTED)] == 1


def test_a_message_for_later_waits_unqueued_on_the_scheduler_s_watch() -> None:
    world = World()
    world.add(message("m1", deferred_ts=int(world.clock.now) + 3600))
    state = world.store.states[("acme", "m1")]
    assert state.status is MessageStatus.SCHEDULED
    assert world.queues.sent == []
    assert state.due_at == world.clock.now + 3600


def test_an_unknown_account_is_recorded_as_an_error_and_the_request_refused() -> None:
    world = World()
    with pytest.raises(BadRequest):
        world.add(message("m1", account_id="nope"))
    state = world.store.states[("acme", "m1")]
    assert state.status is MessageStatus.ERROR
    assert state.error == "Account 'nope' not found for tenant 'acme'"
    assert world.queues.sent == []


def test_one_bad_account_does_not_hold_up_the_others() -> None:
    world = World()
    result = world.add(message("m1"), message("m2", account_id="nope"))
    assert result.queued == 1
    assert [r["id"] for r in result.rejected] == ["m2"]
    assert world.queues.message_ids() == ["m1"]


def test_a_repeated_id_within_a_request_is_stored_once_as_its_last_version() -> None:
    world = World()
    result = world.add(message("m1", subject="first"), message("m1", subject="second"))
    assert result.queued == 1
    assert world.store.payloads[("acme", "m1")]["subject"] == "second"


def test_resubmitting_a_sent_message_is_answered_already_sent_and_queues_nothing() -> None:
    world = World()
    world.add(message("m1"))
    key = ("acme", "m1")
    from dataclasses import replace

    world.store.states[key] = replace(world.store.states[key], status=MessageStatus.SENT)
    world.queues.sent.clear()
    result = world.add(message("m1"))
    assert result.queued == 0
    assert result.rejected[0]["id"] == "m1"
    assert world.queues.sent == []


def test_a_tenant_cannot_submit_for_another_tenant() -> None:
    with pytest.raises(Unauthorized):
        World().add(message("m1", tenant_id="beta"))


def test_the_admin_s_message_without_tenant_finds_it_by_its_account() -> None:
    world = World()
    world.add(message("m1"), caller=ADMIN)
    assert ("acme", "m1") in world.store.states


def test_the_admin_s_message_without_tenant_or_account_is_a_field_problem() -> None:
    with pytest.raises(InvalidRequest):
        World().add(message("m1", account_id=None), caller=ADMIN)
