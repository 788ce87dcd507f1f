"""The scheduler's tick and the release of held messages, against the in-memory store and
queues: what falls due is queued once, with the delay it has left (no AWS)."""

from __future__ import annotations

from dataclasses import replace

from mailproxy.domain.priority import Priority
from mailproxy.domain.record import MessageState
from mailproxy.domain.scheduling import ENQUEUE_CONFIRM_GRACE_SECONDS, due_shard, held_shard
from mailproxy.domain.status import MessageStatus
from mailproxy.service.scheduling import release_held, tick
from tests.support.fakes import T0, FakeClock, FakeQueues, InMemoryStore


def waiting(
    message_id: str, status: MessageStatus, due_at: float, **fields: object
) -> MessageState:
    return MessageState(
        tenant_id="acme",
        id=message_id,
        status=status,
        priority=Priority.MEDIUM,
        ticket=f"ticket-{message_id}",
        created_at=T0 - 600,
        updated_at=T0 - 600,
        account_id="main",
        due_shard=due_shard("acme", message_id),
        due_at=due_at,
        **fields,  # type: ignore[arg-type]
    )


def store_with(*states: MessageState) -> InMemoryStore:
    store = InMemoryStore()
    for state in states:
        store.states[(state.tenant_id, state.id)] = state
    return store


def test_a_scheduled_send_due_within_the_minute_is_queued_with_its_remaining_delay() -> None:
    # Given a send scheduled 40 seconds from now
    state = waiting("m1", MessageStatus.SCHEDULED, T0 + 40, deferred_ts=T0 + 40)
    store, queues = store_with(state), FakeQueues()
    # When the scheduler ticks
    result = tick(store, queues, clock=FakeClock(T0))
    # Then it is queued once, under its ticket, 40 seconds delayed, and watched a while more
    assert (result.queued, result.superseded) == (1, 0)
    [queued] = queues.sent
    assert (queued.reference.ticket, queued.delay_seconds) == ("ticket-m1", 40)
    watched = store.states[("acme", "m1")]
    assert watched.due_at == T0 + 40 + ENQUEUE_CONFIRM_GRACE_SECONDS


def test_what_is_due_later_than_the_minute_is_left_for_a_later_tick() -> None:
    state = waiting("m1", MessageStatus.SCHEDULED, T0 + 3600, deferred_ts=T0 + 3600)
    store, queues = store_with(state), FakeQueues()
    assert tick(store, queues, clock=FakeClock(T0)).queued == 0
    assert queues.sent == []


def test_a_message_whose_queueing_was_never_confirmed_goes_at_once() -> None:
    store, queues = store_with(waiting("m1", MessageStatus.PENDING, T0 - 1)), FakeQueues()
    tick(store, queues, clock=FakeClock(T0))
    assert [(e.reference.message_id, e.delay_seconds) for e in queues.sent] == [("m1", 0)]


def test_two_ticks_in_a_row_queue_a_message_once() -> None:
    store, queues = store_with(waiting("m1", MessageStatus.PENDING, T0 - 1)), FakeQueues()
    clock = FakeClock(T0)
    tick(store, queues, clock=clock)
    clock.advance(1)
    tick(store, queues, clock=clock)
    assert queues.message_ids() == ["m1"]


class SenderTakesItAfterTheRead(InMemoryStore):
    """A store where each message's ticket moves just after the tick reads it."""

    def due_messages(self, shard: str, until: float, limit: int) -> list[MessageState]:
        found = super().due_messages(shard, until, limit)
        for read in found:
            self.states[(read.tenant_id, read.id)] = replace(read, ticket="moved")
        return found


def test_a_message_changed_since_it_was_read_is_superseded_not_queued() -> None:
    # Given a message whose ticket moves between the tick's read and its write
    store, queues = SenderTakesItAfterTheRead(), FakeQueues()
    store.states[("acme", "m1")] = waiting("m1", MessageStatus.PENDING, T0 - 1)
    # When the scheduler ticks / Then it leaves the message as it is, and queues nothing
    result = tick(store, queues, clock=FakeClock(T0))
    assert (result.queued, result.superseded) == (0, 1)
    assert queues.sent == []


def test_activation_releases_the_held_messages_of_the_batch_named_only() -> None:
    held = held_shard("acme")
    news = replace(waiting("n1", MessageStatus.PENDING, T0), due_shard=held, batch_code="news")
    other = replace(waiting("o1", MessageStatus.PENDING, T0), due_shard=held, batch_code="promo")
    store, queues = store_with(news, other), FakeQueues()
    result = release_held("acme", "news", store, queues, clock=FakeClock(T0))
    assert result.queued == 1
    assert queues.message_ids() == ["n1"]
