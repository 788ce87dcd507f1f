"""Deliveries nobody can be sure of: the connection lost after the message data (the server
may have it), and a sender gone while it held the message. Both are recorded as `ambiguous`;
the account says whether to retry (the copy keeps its Message-ID) or to fail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailproxy import runtime
from mailproxy.delivery.mime import stable_message_id
from mailproxy.domain.message import Message
from mailproxy.domain.ports import Claimed
from mailproxy.domain.rate_limit import SlotFree, SlotWrite, Window, WindowCounts, take_slot
from mailproxy.domain.status import MessageStatus
from mailproxy.queueing import Reference
from mailproxy.service.delivery import Outcome
from tests.support.api_calls import add_all
from tests.support.delivery_clock import (
    FrozenClock,
    counter_buckets,
    deliver_all,
    deliver_one,
    live_reference,
    state_of,
    take_queued,
)
from tests.support.handlers import ApiClient, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.sqs import queue_depths

# 2033-05-18 03:33:20.25 UTC: after any submission a test makes.
T = 2_000_000_000.25
LEASE = 360
MINUTE = Window("minute", 60, 1)


@pytest.fixture
def dropping_server() -> Iterator[SmtpServer]:
    """Takes the message, then drops the connection after the final "." unanswered."""
    with SmtpServer(drop_after_data=True) as server:
        yield server


def setup_account(api: ApiClient, server: SmtpServer, **overrides: Any) -> None:
    assert api.call("POST", "/account", account_for(server, **overrides)) == (200, {"ok": True})


def record_of(api: ApiClient, message_id: str) -> dict[str, Any]:
    status, body = api.call("GET", "/messages", query="include_history=true")
    assert status == 200, body
    [record] = [r for r in body["messages"] if r["id"] == message_id]
    return dict(record)


def history(record: dict[str, Any]) -> list[str]:
    return [event["event_type"] for event in record["history"]]


# -- the connection lost after the data -------------------------------------------------------


def test_a_connection_lost_after_data_is_ambiguous_and_retried_with_the_same_message_id(
    api: ApiClient, aws: Any, dropping_server: SmtpServer, smtp_server: SmtpServer
) -> None:
    # Given an account (retrying ambiguous deliveries, the default) on a server that drops
    # the connection after the message data
    setup_account(api, dropping_server)
    add_all(api, message("m1"))
    clock = FrozenClock(T, tick=0.001)
    # When the message is delivered
    outcome = deliver_all(take_queued(aws.queues["medium"]), clock)
    # Then the attempt is ambiguous, and a retry is deferred (a minute ahead)
    assert outcome == {"m1": Outcome.DEFERRED}
    record = record_of(api, "m1")
    assert record["status"] == "deferred"
    assert history(record) == ["ambiguous", "deferred"]
    ambiguous, deferred = record["history"]
    assert ambiguous["description"].startswith("Connection lost after the message was sent")
    assert deferred["metadata"]["retry"] == 1
    assert deferred["metadata"]["deferred_ts"] == record["deferred_ts"]
    assert int(T) + 60 <= record["deferred_ts"] <= int(T) + 61
    assert state_of("acme", "m1").retries == 1
    # (the server did take the first copy before it hung up)
    [first] = dropping_server.received
    # and its reference waits on the queue
    assert queue_depths(aws.queues)["medium"] == 1

    # When the account moves to a server that answers, and the retry is due
    setup_account(api, smtp_server)
    clock.set(state_of("acme", "m1").deferred_ts or 0)
    assert deliver_one(live_reference("acme", "m1"), clock) is Outcome.SENT
    # Then the retried copy carries the same Message-ID as the first one: the stable one
    [retried] = smtp_server.received
    expected = stable_message_id("acme", Message.model_validate(message("m1")))
    assert retried.message["Message-ID"] == first.message["Message-ID"] == expected
    assert retried.message["X-Genro-Mail-ID"] == "m1"
    assert history(record_of(api, "m1")) == ["ambiguous", "deferred", "sent"]
    assert record_of(api, "m1")["status"] == "sent"


def test_a_client_message_id_is_kept_on_the_retried_copy(
    api: ApiClient, aws: Any, dropping_server: SmtpServer, smtp_server: SmtpServer
) -> None:
    # Given a message with the client's own Message-ID, first sent to a dropping server
    setup_account(api, dropping_server)
    add_all(api, message("m1", message_id="order-42@shop.test"))
    clock = FrozenClock(T, tick=0.001)
    deliver_all(take_queued(aws.queues["medium"]), clock)
    # When retried on a server that answers
    setup_account(api, smtp_server)
    clock.set(float(state_of("acme", "m1").deferred_ts or 0))
    assert deliver_one(live_reference("acme", "m1"), clock) is Outcome.SENT
    # Then both copies carry the client's Message-ID
    assert [r.message["Message-ID"] for r in dropping_server.received + smtp_server.received] == [
        "<order-42@shop.test>",
        "<order-42@shop.test>",
    ]


def test_an_ambiguous_attempt_keeps_its_rate_limit_slot(
    api: ApiClient, aws: Any, dropping_server: SmtpServer
) -> None:
    # Given 1 message a minute on a server that drops the connection after the data
    setup_account(api, dropping_server, limit_per_minute=1)
    add_all(api, message("m1"), message("m2"))
    [first, second] = take_queued(aws.queues["medium"])
    clock = FrozenClock(T, tick=0.001)
    # When m1's attempt is ambiguous (retried later)
    assert deliver_one(first, clock) is Outcome.DEFERRED
    # Then its slot stays taken: the server may have the message
    assert counter_buckets(aws.tables["counters"]) == {
        MINUTE.counter_key("acme", "main"): {MINUTE.bucket(T): 1}
    }
    # and m2, in the same minute, waits
    assert deliver_one(second, clock) is Outcome.RATE_LIMITED


def test_with_on_ambiguous_fail_the_message_fails_as_uncertain(
    api: ApiClient, aws: Any, dropping_server: SmtpServer
) -> None:
    # Given an account that fails ambiguous deliveries, on a dropping server
    setup_account(api, dropping_server, on_ambiguous="fail")
    add_all(api, message("m1"))
    # When delivered
    outcome = deliver_all(take_queued(aws.queues["medium"]), FrozenClock(T, tick=0.001))
    # Then it fails as uncertain, with no retry
    assert outcome == {"m1": Outcome.ERROR}
    record = record_of(api, "m1")
    assert record["status"] == "error"
    assert record["error"].startswith("Delivery uncertain: Connection lost after the message")
    assert history(record) == ["ambiguous", "error"]
    assert record["history"][1]["description"] == record["error"]
    assert "deferred_ts" not in record
    assert state_of("acme", "m1").retries == 0
    assert sum(queue_depths(aws.queues).values()) == 0


# -- a sender gone while it held the message --------------------------------------------------


def claim_as_dead_sender(
    message_id: str, now: float, charges: list[SlotWrite] | None = None
) -> None:
    """What a sender did before it died: claim the message under a lease, and no more."""
    state = state_of("acme", message_id)
    claimed = runtime.store().claim(
        "acme",
        message_id,
        state.ticket,
        state.body_version,
        now=now,
        lease_seconds=LEASE,
        claim_token="dead-sender",
        charges=charges or [],
    )
    assert isinstance(claimed, Claimed)


@pytest.fixture
def claimed_by_dead_sender(api: ApiClient, aws: Any, smtp_server: SmtpServer) -> Reference:
    """m1, claimed at T by a sender that then died; its queue record, redelivered."""
    setup_account(api, smtp_server)
    add_all(api, message("m1"))
    [reference] = take_queued(aws.queues["medium"])
    claim_as_dead_sender("m1", T)
    assert state_of("acme", "m1").status is MessageStatus.SENDING
    return reference


def test_after_the_lease_ran_out_the_message_is_taken_over_as_ambiguous(
    api: ApiClient, smtp_server: SmtpServer, claimed_by_dead_sender: Reference
) -> None:
    # When the record comes back after the dead sender's lease ended
    outcome = deliver_one(claimed_by_dead_sender, FrozenClock(T + LEASE + 40, tick=0.001))
    # Then the message is re-claimed and sent once, its history saying it may be a copy
    assert outcome is Outcome.SENT
    assert len(smtp_server.received) == 1
    record = record_of(api, "m1")
    assert record["status"] == "sent"
    assert history(record) == ["ambiguous", "sent"]
    assert record["history"][0]["description"] == (
        "A previous attempt may have delivered this message (its sender stopped)"
    )
    assert state_of("acme", "m1").attempts == 2


def test_while_the_lease_lives_the_record_is_dropped(
    api: ApiClient, smtp_server: SmtpServer, claimed_by_dead_sender: Reference
) -> None:
    # When the record comes back while the (maybe still busy) sender's lease lives
    outcome = deliver_one(claimed_by_dead_sender, FrozenClock(T + 100, tick=0.001))
    # Then nothing is sent and the message stays with its owner
    assert outcome is Outcome.DROPPED
    assert smtp_server.received == []
    state = state_of("acme", "m1")
    assert state.status is MessageStatus.SENDING
    assert state.claim_token == "dead-sender"
    assert state.lease_until == T + LEASE
    assert record_of(api, "m1")["history"] == []


def test_after_the_lease_ran_out_on_ambiguous_fail_the_message_fails_unsent(
    api: ApiClient, smtp_server: SmtpServer, claimed_by_dead_sender: Reference
) -> None:
    # Given the account fails ambiguous deliveries
    setup_account(api, smtp_server, on_ambiguous="fail")
    # When the record comes back after the lease ended
    outcome = deliver_one(claimed_by_dead_sender, FrozenClock(T + LEASE + 40, tick=0.001))
    # Then the message fails as uncertain and is not sent again
    assert outcome is Outcome.ERROR
    assert smtp_server.received == []
    record = record_of(api, "m1")
    assert record["status"] == "error"
    assert record["error"] == (
        "Delivery uncertain: A previous attempt may have delivered this message "
        "(its sender stopped)"
    )
    assert history(record) == ["ambiguous", "error"]


def test_a_second_redelivery_after_the_take_over_sends_nothing_more(
    api: ApiClient, smtp_server: SmtpServer, claimed_by_dead_sender: Reference
) -> None:
    # Given the message taken over and sent after the lease ran out
    clock = FrozenClock(T + LEASE + 40, tick=0.001)
    assert deliver_one(claimed_by_dead_sender, clock) is Outcome.SENT
    # When the same record comes back once more
    assert deliver_one(claimed_by_dead_sender, clock) is Outcome.DROPPED
    # Then there was still one SMTP transaction
    assert len(smtp_server.received) == 1
    assert history(record_of(api, "m1")) == ["ambiguous", "sent"]


def test_a_take_over_that_finds_the_window_full_defers_the_message(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 1 message a minute; m1 claimed (with its slot) by a sender that died at T
    setup_account(api, smtp_server, limit_per_minute=1)
    add_all(api, message("m1"))
    [stale] = take_queued(aws.queues["medium"])
    slot = take_slot(MINUTE, WindowCounts(MINUTE.counter_key("acme", "main")), T)
    assert isinstance(slot, SlotFree)
    claim_as_dead_sender("m1", T, [slot.write])
    # and, after its lease ran out, m2 took the slot of the last 60 s
    later = T + LEASE + 40
    clock = FrozenClock(later, tick=0.001)
    add_all(api, message("m2"))
    assert deliver_all(take_queued(aws.queues["medium"]), clock) == {"m2": Outcome.SENT}
    [buckets] = counter_buckets(aws.tables["counters"]).values()
    assert buckets == {MINUTE.bucket(later): 1}
    # When m1's record comes back within 60 s of that send
    outcome = deliver_one(stale, clock)
    # Then m1 is not sent now, but waits (as a deferral) until that slot frees, and goes then
    assert [r.message["X-Genro-Mail-ID"] for r in smtp_server.received] == ["m2"]
    assert outcome is Outcome.RATE_LIMITED
    state = state_of("acme", "m1")
    assert state.status is MessageStatus.DEFERRED
    assert state.deferred_ts == MINUTE.frees_at(MINUTE.bucket(later))
    clock.set(state.deferred_ts)
    assert deliver_one(live_reference("acme", "m1"), clock) is Outcome.SENT
