"""Delivering queued references against the in-memory store, queues and transport: a
message has one owner at a time, and each outcome is written with the claim that made it
(no AWS, no SMTP)."""

from __future__ import annotations

from dataclasses import replace
from itertools import count
from typing import Any

import pytest

from mailproxy.domain.account import Account
from mailproxy.domain.errors import DeliveryError, StaleWrite
from mailproxy.domain.message import Message
from mailproxy.domain.ports import AttemptOutcome, Claimed, NotClaimable, Sent
from mailproxy.domain.priority import Priority
from mailproxy.domain.record import MessageState
from mailproxy.domain.status import EventType, MessageStatus
from mailproxy.domain.tenant import ALL_BATCHES, Tenant
from mailproxy.queueing import Reference
from mailproxy.service.delivery import DeliveryContext, Invocation, Outcome, deliver, deliver_batch
from tests.support.fakes import T0, FakeClock, FakeQueues, FakeSealer, FakeTransport, InMemoryStore


class World:
    """Tenant acme, its account main, and what a sender reaches."""

    def __init__(self, **account: Any) -> None:
        self.store = InMemoryStore()
        self.store.create_tenant(Tenant(id="acme", created_at=T0, updated_at=T0))
        self.store.put_account(
            Account(id="main", tenant_id="acme", host="smtp.test", port=587, **account),
            None,
            False,
            T0,
        )
        self.transport = FakeTransport()
        self.queues = FakeQueues()
        self.clock = FakeClock()
        self._tickets = count(1)

    def stored(self, message_id: str, **fields: Any) -> Reference:
        """A message stored and waiting, and the live reference to it."""
        payload = Message.model_validate(
            {
                "id": message_id,
                "from": "app@acme.test",
                "to": ["user@example.test"],
                "subject": f"Subject {message_id}",
                "body": "Hello",
                "account_id": "main",
            }
        ).as_submitted() | {"tenant_id": "acme"}
        state = MessageState(
            "acme",
            message_id,
            MessageStatus.PENDING,
            Priority.MEDIUM,
            f"ticket-{message_id}",
            T0,
            T0,
            account_id="main",
            body_version="v1",
        )
        self.store.states[("acme", message_id)] = replace(state, **fields)
        self.store.payloads[("acme", message_id)] = payload
        return Reference("acme", message_id, f"ticket-{message_id}", "main")

    def context(self) -> DeliveryContext:
        return DeliveryContext(
            store=self.store,
            transport=self.transport,
            queues=self.queues,
            clock=self.clock,
            lease_seconds=360,
            new_ticket=lambda: f"new-{next(self._tickets)}",
            secrets=FakeSealer(),
        )

    def deliver(self, reference: Reference) -> Outcome:
        return deliver(reference, Invocation.prepare(self.context(), [reference]))

    def state(self, message_id: str) -> MessageState:
        return self.store.states[("acme", message_id)]

    def event_types(self) -> list[EventType]:
        return [event.event_type for event in self.store.events.get("acme", [])]


def test_a_waiting_message_is_sent_once_and_recorded_sent() -> None:
    world = World()
    outcome = world.deliver(world.stored("m1"))
    assert outcome is Outcome.SENT
    assert len(world.transport.sent) == 1
    state = world.state("m1")
    assert (state.status, state.sent_ts, state.lease_until) == (MessageStatus.SENT, T0, None)
    assert world.event_types() == [EventType.SENT]


def test_a_redelivered_reference_of_a_sent_message_is_dropped_and_sends_nothing() -> None:
    world = World()
    reference = world.stored("m1")
    world.deliver(reference)
    assert world.deliver(reference) is Outcome.DROPPED
    assert len(world.transport.sent) == 1


def test_a_superseded_reference_is_dropped() -> None:
    world = World()
    reference = world.stored("m1")
    assert world.deliver(replace(reference, ticket="old")) is Outcome.DROPPED
    assert world.transport.sent == []


def test_a_temporary_failure_is_retried_later_under_a_new_ticket() -> None:
    # Given a server that answers 451 once
    world = World()
    world.transport.failures.append(DeliveryError("451 later", temporary=True, smtp_code=451))
    # When the message is delivered
    outcome = world.deliver(world.stored("m1"))
    # Then it is deferred, its retry counted, and its next reference queued under the new ticket
    assert outcome is Outcome.DEFERRED
    state = world.state("m1")
    assert state.status is MessageStatus.DEFERRED
    assert (state.retries, state.ticket) == (1, world.queues.sent[0].reference.ticket)
    assert state.deferred_ts is not None
    assert state.deferred_ts > T0
    assert world.queues.sent[0].reference.retries == 1
    assert world.event_types() == [EventType.DEFERRED]


def test_a_permanent_failure_ends_the_message_in_error() -> None:
    world = World()
    world.transport.failures.append(DeliveryError("550 no such user", temporary=False))
    assert world.deliver(world.stored("m1")) is Outcome.ERROR
    state = world.state("m1")
    assert state.status is MessageStatus.ERROR
    assert state.error is not None
    assert "550 no such user" in state.error
    assert world.queues.sent == []


def test_a_suspended_tenant_s_message_is_held_aside_unsent() -> None:
    world = World()
    world.store.patch_tenant("acme", {"suspended_batches": {ALL_BATCHES}}, T0)
    assert world.deliver(world.stored("m1")) is Outcome.HELD
    assert world.transport.sent == []
    assert world.store.held_messages("acme")[0].id == "m1"


def test_an_account_over_its_limit_defers_the_next_message_until_a_slot_frees() -> None:
    world = World(limit_per_minute=1)
    first, second = world.stored("m1"), world.stored("m2")
    invocation = Invocation.prepare(world.context(), [first, second])
    assert deliver(first, invocation) is Outcome.SENT
    assert deliver(second, invocation) is Outcome.RATE_LIMITED
    state = world.state("m2")
    assert state.status is MessageStatus.DEFERRED
    assert state.deferred_ts is not None
    # about a minute on: the window rolls by sub-buckets, a little conservatively
    assert T0 + 60 <= state.deferred_ts <= T0 + 120
    assert len(world.transport.sent) == 1


def test_a_batch_sends_each_message_and_answers_in_the_order_given() -> None:
    world = World(max_connections=2)
    references = [world.stored(f"m{n}") for n in range(3)]
    outcomes = deliver_batch(references, Invocation.prepare(world.context(), references))
    assert outcomes == [Outcome.SENT] * 3
    assert {world.state(f"m{n}").status for n in range(3)} == {MessageStatus.SENT}


def test_a_claimed_message_cannot_be_claimed_again_and_a_stale_outcome_is_refused() -> None:
    # Given a message claimed by one sender
    world = World()
    world.stored("m1")
    claim = world.store.claim(
        "acme", "m1", "ticket-m1", "v1", now=T0, lease_seconds=60, claim_token="a", charges=[]
    )
    assert isinstance(claim, Claimed)
    # When another claims it / Then it is refused
    again = world.store.claim(
        "acme", "m1", "ticket-m1", "v1", now=T0, lease_seconds=60, claim_token="b", charges=[]
    )
    assert isinstance(again, NotClaimable)
    # and an outcome under a claim that is not the owner's is stale, and writes nothing
    with pytest.raises(StaleWrite):
        world.store.finish_attempt(AttemptOutcome("acme", "m1", "b", T0, [], Sent()))
    assert world.state("m1").status is MessageStatus.SENDING
