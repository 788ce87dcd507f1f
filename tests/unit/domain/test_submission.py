"""What a submission does, given what is already stored under its id."""

from __future__ import annotations

import pytest

from mailproxy.domain.priority import Priority
from mailproxy.domain.status import MessageStatus
from mailproxy.domain.submission import (
    MAX_QUEUE_DELAY_SECONDS,
    Accept,
    QueuedState,
    Reject,
    plan_submission,
    queue_delay,
)

NOW = 1_700_000_000.0


def stored(
    status: MessageStatus = MessageStatus.PENDING,
    priority: Priority = Priority.MEDIUM,
    due_ts: float | None = None,
) -> QueuedState:
    return QueuedState(status=status, priority=priority, ticket="t1", due_ts=due_ts)


def test_a_new_message_is_pending_and_queued_now() -> None:
    assert plan_submission(None, Priority.MEDIUM, None, NOW) == Accept(
        MessageStatus.PENDING, None, enqueue=True, delay_seconds=0
    )


def test_a_new_message_for_later_is_scheduled_and_held_back() -> None:
    # Given deferred_ts two minutes ahead / Then scheduled, and queued with a 120 s delay
    assert plan_submission(None, Priority.MEDIUM, NOW + 120, NOW) == Accept(
        MessageStatus.SCHEDULED, NOW + 120, enqueue=True, delay_seconds=120
    )


def test_a_deferred_ts_in_the_past_means_now() -> None:
    assert plan_submission(None, Priority.LOW, NOW - 10, NOW) == Accept(
        MessageStatus.PENDING, None, enqueue=True, delay_seconds=0
    )


def test_a_send_later_than_a_queue_can_hold_is_left_to_the_scheduler() -> None:
    # Given a send in an hour / Then it is stored as scheduled and not queued now: SQS holds a
    # reference back 900 s at most, so the scheduler queues it when it falls due
    plan = plan_submission(None, Priority.MEDIUM, NOW + 3600, NOW)
    assert plan == Accept(MessageStatus.SCHEDULED, NOW + 3600, enqueue=False, delay_seconds=900)
    assert MAX_QUEUE_DELAY_SECONDS == 900


def test_a_send_within_15_minutes_is_queued_now_and_held_back() -> None:
    plan = plan_submission(None, Priority.MEDIUM, NOW + 600, NOW)
    assert plan == Accept(MessageStatus.SCHEDULED, NOW + 600, enqueue=True, delay_seconds=600)


@pytest.mark.parametrize(
    ("due_ts", "delay"),
    [(None, 0), (NOW - 1, 0), (NOW, 0), (NOW + 0.2, 1), (NOW + 900, 900), (NOW + 901, 900)],
)
def test_queue_delay(due_ts: float | None, delay: int) -> None:
    assert queue_delay(due_ts, NOW) == delay


def test_replacing_a_pending_message_keeps_its_place_in_line() -> None:
    # Given a pending message / When resubmitted with the same priority / Then not queued again
    plan = plan_submission(stored(), Priority.MEDIUM, None, NOW)
    assert plan == Accept(
        MessageStatus.PENDING, None, enqueue=False, delay_seconds=0, keeps_ticket=True
    )


def test_replacing_with_another_priority_queues_it_again() -> None:
    plan = plan_submission(stored(priority=Priority.LOW), Priority.HIGH, None, NOW)
    assert isinstance(plan, Accept)
    assert plan.enqueue


def test_moving_a_scheduled_message_earlier_queues_it_again() -> None:
    # Given a message scheduled in 10 minutes / When moved to 2 minutes / Then a new reference
    plan = plan_submission(
        stored(MessageStatus.SCHEDULED, due_ts=NOW + 600), Priority.MEDIUM, NOW + 120, NOW
    )
    assert plan == Accept(MessageStatus.SCHEDULED, NOW + 120, enqueue=True, delay_seconds=120)


def test_sending_a_scheduled_message_now_queues_it_again() -> None:
    plan = plan_submission(
        stored(MessageStatus.SCHEDULED, due_ts=NOW + 600), Priority.MEDIUM, None, NOW
    )
    assert plan == Accept(MessageStatus.PENDING, None, enqueue=True, delay_seconds=0)


def test_moving_a_scheduled_message_later_keeps_its_reference() -> None:
    # The old reference arrives early and is handed on by the sender: no second one is needed
    plan = plan_submission(
        stored(MessageStatus.SCHEDULED, due_ts=NOW + 120), Priority.MEDIUM, NOW + 600, NOW
    )
    assert plan == Accept(
        MessageStatus.SCHEDULED, NOW + 600, enqueue=False, delay_seconds=600, keeps_ticket=True
    )


def test_replacing_a_message_waiting_for_a_retry_queues_it_again() -> None:
    plan = plan_submission(
        stored(MessageStatus.DEFERRED, due_ts=NOW + 300), Priority.MEDIUM, None, NOW
    )
    assert plan == Accept(MessageStatus.PENDING, None, enqueue=True, delay_seconds=0)


@pytest.mark.parametrize("status", [MessageStatus.SENT, MessageStatus.ERROR])
def test_a_finished_message_is_already_sent(status: MessageStatus) -> None:
    assert plan_submission(stored(status), Priority.MEDIUM, None, NOW) == Reject("already sent")


def test_a_message_being_sent_cannot_be_replaced() -> None:
    assert plan_submission(stored(MessageStatus.SENDING), Priority.MEDIUM, None, NOW) == Reject(
        "being sent"
    )


def test_replacing_with_another_account_queues_it_again() -> None:
    # Given a pending message of account "main"
    existing = QueuedState(MessageStatus.PENDING, Priority.MEDIUM, "t1", None, "main")
    # When it is replaced naming another account / Then a fresh reference is queued: the
    # account's rate-limit slots are charged by the reference, which must name the right one
    plan = plan_submission(existing, Priority.MEDIUM, None, NOW, "backup")
    assert isinstance(plan, Accept)
    assert plan.enqueue
