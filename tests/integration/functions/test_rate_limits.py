"""Per-account rate limits, end to end over moto and a real SMTP server, with the sender's
clock held by the test: what goes, what is deferred to the window's end (not a retry), what a
rejecting account fails, and how the counters are charged and given back."""

from __future__ import annotations

from typing import Any

import pytest

from mailproxy.domain.rate_limit import Window
from mailproxy.service.delivery import Outcome
from tests.conftest import ApiClient, account_for, message
from tests.support.delivery_clock import (
    FrozenClock,
    counter_slots,
    deliver_all,
    deliver_one,
    live_reference,
    state_of,
    take_queued,
)
from tests.support.smtp_servers import SmtpServer
from tests.support.sqs import queue_depths

# 2033-05-18 03:33:20.25 UTC: after any submission a test makes, and on no window boundary.
T = 2_000_000_000.25
MINUTE = Window("minute", 60, 0)
HOUR = Window("hour", 3600, 0)
DAY = Window("day", 86400, 0)
GREYLISTED = "451 4.7.1 Greylisted, try later"


def setup_account(api: ApiClient, server: SmtpServer, **overrides: Any) -> None:
    assert api.call("POST", "/account", account_for(server, **overrides)) == (200, {"ok": True})


def add(api: ApiClient, *ids: str) -> None:
    status, body = api.call(
        "POST", "/commands/add-messages", {"messages": [message(i) for i in ids]}
    )
    assert (status, body["queued"]) == (200, len(ids)), body


def records(api: ApiClient) -> dict[str, dict[str, Any]]:
    status, body = api.call("GET", "/messages", query="include_history=true")
    assert status == 200, body
    return {record["id"]: record for record in body["messages"]}


def mail_ids(server: SmtpServer) -> list[str]:
    return [str(item.message["X-Genro-Mail-ID"]) for item in server.received]


def event_types(record: dict[str, Any]) -> list[str]:
    return [event["event_type"] for event in record["history"]]


def key(window: str, at: float) -> str:
    start = {"minute": MINUTE, "hour": HOUR, "day": DAY}[window].start(at)
    return f"acme#main#{window}#{start}"


# -- defer ------------------------------------------------------------------------------------


def test_over_the_minute_limit_the_rest_wait_for_the_next_minute(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given an account allowing 3 messages a minute, and 5 messages queued
    setup_account(api, smtp_server, limit_per_minute=3)
    add(api, "m1", "m2", "m3", "m4", "m5")
    clock = FrozenClock(T)
    # When one sender invocation handles them all at T
    outcomes = deliver_all(take_queued(aws.queues["medium"]), clock)
    # Then 3 are sent and 2 are deferred to the end of T's minute
    assert outcomes == {
        "m1": Outcome.SENT,
        "m2": Outcome.SENT,
        "m3": Outcome.SENT,
        "m4": Outcome.RATE_LIMITED,
        "m5": Outcome.RATE_LIMITED,
    }
    assert mail_ids(smtp_server) == ["m1", "m2", "m3"]
    end_of_minute = MINUTE.end(T)
    stored = records(api)
    for deferred in ("m4", "m5"):
        record = stored[deferred]
        assert record["status"] == "deferred"
        assert record["deferred_ts"] == end_of_minute
        assert "error" not in record
        [event] = record["history"]
        assert event["event_type"] == "deferred"
        assert event["metadata"]["deferred_ts"] == end_of_minute
        assert "limit_per_minute" in event["metadata"]["deferred_reason"]
        assert event["metadata"]["deferred_reason"] == "rate_limit_exceeded: limit_per_minute 3"
        assert "retry" not in event["metadata"]
    # and the deferral is not a retry
    assert state_of("acme", "m4").retries == 0
    assert live_reference("acme", "m4").retries == 0
    # and a new reference waits, held back (not visible yet), on the queue for each of them
    assert queue_depths(aws.queues)["medium"] == 2
    assert take_queued(aws.queues["medium"]) == []

    # When the clock reaches the next minute and their references arrive
    clock.set(end_of_minute + 0.5)
    outcomes = deliver_all([live_reference("acme", "m4"), live_reference("acme", "m5")], clock)
    # Then both are sent, each after its deferral
    assert outcomes == {"m4": Outcome.SENT, "m5": Outcome.SENT}
    assert mail_ids(smtp_server) == ["m1", "m2", "m3", "m4", "m5"]
    stored = records(api)
    assert {i: r["status"] for i, r in stored.items()} == dict.fromkeys(stored, "sent")
    assert event_types(stored["m4"]) == ["deferred", "sent"]
    assert event_types(stored["m1"]) == ["sent"]
    # and the counters hold 3 slots in T's minute and 2 in the next one
    slots = counter_slots(aws.tables["counters"])
    assert slots == {key("minute", T): 3, key("minute", end_of_minute): 2}


def test_a_reference_arriving_before_the_window_ends_is_handed_on(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given a message deferred by a full minute
    setup_account(api, smtp_server, limit_per_minute=1)
    add(api, "m1", "m2")
    clock = FrozenClock(T)
    deliver_all(take_queued(aws.queues["medium"]), clock)
    assert state_of("acme", "m2").deferred_ts == MINUTE.end(T)
    # When its reference comes back early, still inside the full minute
    clock.set(T + 1)
    outcome = deliver_one(live_reference("acme", "m2"), clock)
    # Then it is handed on, untouched, nothing sent and no slot taken
    assert outcome is Outcome.HANDED_ON
    assert mail_ids(smtp_server) == ["m1"]
    assert state_of("acme", "m2").deferred_ts == MINUTE.end(T)
    assert counter_slots(aws.tables["counters"]) == {key("minute", T): 1}


def test_a_rate_deferral_does_not_use_up_a_retry(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given a message deferred by a full minute (its first attempt)
    setup_account(api, smtp_server, limit_per_minute=1)
    add(api, "m1", "m2")
    clock = FrozenClock(T)
    assert deliver_all(take_queued(aws.queues["medium"]), clock)["m2"] is Outcome.RATE_LIMITED
    # When every later attempt meets a 451, one attempt in each new window
    smtp_server.handler.data_reply = GREYLISTED
    outcomes = []
    for _ in range(6):
        clock.set((state_of("acme", "m2").deferred_ts or 0) + 0.5)
        outcomes.append(deliver_one(live_reference("acme", "m2"), clock))
    # Then it gets all 5 retries after its deferral, and fails on the sixth failure
    assert outcomes == [Outcome.RETRY] * 5 + [Outcome.FAILED]
    record = records(api)["m2"]
    assert record["status"] == "error"
    assert record["error"].startswith("Max retries (5) exceeded: ")
    assert event_types(record) == ["deferred"] * 6 + ["error"]
    assert "retry" not in record["history"][0]["metadata"]


# -- reject -----------------------------------------------------------------------------------


def test_a_rejecting_account_fails_what_is_over_the_limit(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given an account allowing 2 a minute that rejects beyond, and 4 messages
    setup_account(api, smtp_server, limit_per_minute=2, limit_behavior="reject")
    add(api, "m1", "m2", "m3", "m4")
    # When delivered at T
    outcomes = deliver_all(take_queued(aws.queues["medium"]), FrozenClock(T))
    # Then 2 are sent and 2 fail with rate_limit_exceeded and an error event
    assert list(outcomes.values()) == [Outcome.SENT] * 2 + [Outcome.FAILED] * 2
    assert mail_ids(smtp_server) == ["m1", "m2"]
    stored = records(api)
    for failed in ("m3", "m4"):
        record = stored[failed]
        assert record["status"] == "error"
        assert record["error"] == "rate_limit_exceeded"
        assert "error_ts" in record
        assert "sent_ts" not in record
        assert "deferred_ts" not in record
        assert [(e["event_type"], e["description"]) for e in record["history"]] == [
            ("error", "rate_limit_exceeded")
        ]
    # and nothing is queued again for them
    assert take_queued(aws.queues["medium"]) == []
    assert counter_slots(aws.tables["counters"]) == {key("minute", T): 2}


# -- each window ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit_field", "window_seconds"),
    [
        ("limit_per_second", 1),
        ("limit_per_minute", 60),
        ("limit_per_hour", 3600),
        ("limit_per_day", 86400),
    ],
)
def test_each_window_is_enforced(
    api: ApiClient, aws: Any, smtp_server: SmtpServer, limit_field: str, window_seconds: int
) -> None:
    # Given an account allowing 2 messages per window, and 3 messages
    setup_account(api, smtp_server, **{limit_field: 2})
    add(api, "m1", "m2", "m3")
    # When delivered at T
    outcomes = deliver_all(take_queued(aws.queues["medium"]), FrozenClock(T))
    # Then 2 are sent and the third waits for the window's (epoch-aligned) end
    assert outcomes["m3"] is Outcome.RATE_LIMITED
    assert mail_ids(smtp_server) == ["m1", "m2"]
    window_end = (int(T) // window_seconds + 1) * window_seconds
    record = records(api)["m3"]
    assert record["status"] == "deferred"
    assert record["deferred_ts"] == window_end
    [event] = record["history"]
    assert event["metadata"]["deferred_reason"] == f"rate_limit_exceeded: {limit_field} 2"
    assert state_of("acme", "m3").retries == 0
    # and it goes once that window is over
    clock = FrozenClock(window_end)
    assert deliver_one(live_reference("acme", "m3"), clock) is Outcome.SENT
    assert mail_ids(smtp_server) == ["m1", "m2", "m3"]


def test_the_day_window_is_the_utc_day(api: ApiClient, aws: Any, smtp_server: SmtpServer) -> None:
    # Given a per-day limit that is full at 23:59:59 UTC
    setup_account(api, smtp_server, limit_per_day=1)
    add(api, "m1", "m2")
    late = DAY.end(T) - 1.0
    outcomes = deliver_all(take_queued(aws.queues["medium"]), FrozenClock(late))
    # Then the deferral lasts one second: to UTC midnight
    assert outcomes["m2"] is Outcome.RATE_LIMITED
    assert state_of("acme", "m2").deferred_ts == DAY.end(T)
    assert deliver_one(live_reference("acme", "m2"), FrozenClock(DAY.end(T))) is Outcome.SENT


# -- slots given back, windows charged together -----------------------------------------------


def test_a_temporary_failure_gives_its_slot_back(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given an account allowing 1 message a minute, retrying after 5 s, on a greylisting server
    setup_account(api, smtp_server, limit_per_minute=1, retry_schedule=[5])
    add(api, "m1")
    start = MINUTE.start(T) + 10.0
    clock = FrozenClock(start)
    smtp_server.handler.data_reply = GREYLISTED
    # When the first attempt meets a 451
    assert deliver_all(take_queued(aws.queues["medium"]), clock) == {"m1": Outcome.RETRY}
    # Then its slot is given back
    assert counter_slots(aws.tables["counters"]) == {key("minute", start): 0}
    # and the retry, in the same minute, can still go
    smtp_server.handler.data_reply = None
    clock.set(start + 5)
    assert deliver_one(live_reference("acme", "m1"), clock) is Outcome.SENT
    assert counter_slots(aws.tables["counters"]) == {key("minute", start): 1}
    assert event_types(records(api)["m1"]) == ["deferred", "sent"]
    # while another message in that minute now finds it full
    add(api, "m2")
    assert deliver_all(take_queued(aws.queues["medium"]), clock) == {"m2": Outcome.RATE_LIMITED}


def test_another_message_takes_the_slot_a_failure_gave_back(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 1 message a minute, and a first message that meets a 451
    setup_account(api, smtp_server, limit_per_minute=1)
    add(api, "m1", "m2")
    [first, second] = take_queued(aws.queues["medium"])
    clock = FrozenClock(T)
    smtp_server.handler.data_reply = GREYLISTED
    assert deliver_one(first, clock) is Outcome.RETRY
    # When a second message comes in the same minute
    smtp_server.handler.data_reply = None
    # Then it goes
    assert deliver_one(second, clock) is Outcome.SENT
    assert mail_ids(smtp_server) == ["m2"]


def test_the_windows_of_one_send_are_charged_together(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 1 a minute and 10 an hour, and 3 messages
    setup_account(api, smtp_server, limit_per_minute=1, limit_per_hour=10)
    add(api, "m1", "m2", "m3")
    # When delivered at T (one goes, two find the minute full)
    outcomes = deliver_all(take_queued(aws.queues["medium"]), FrozenClock(T))
    assert list(outcomes.values()) == [Outcome.SENT, Outcome.RATE_LIMITED, Outcome.RATE_LIMITED]
    # Then the hour holds one slot: the refused sends took none of its slots
    assert counter_slots(aws.tables["counters"]) == {key("minute", T): 1, key("hour", T): 1}


def test_a_full_hour_takes_no_minute_slot(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 5 a minute but 1 an hour, and 2 messages
    setup_account(api, smtp_server, limit_per_minute=5, limit_per_hour=1)
    add(api, "m1", "m2")
    outcomes = deliver_all(take_queued(aws.queues["medium"]), FrozenClock(T))
    # Then the second waits for the hour's end, and the minute was not charged for it
    assert outcomes["m2"] is Outcome.RATE_LIMITED
    assert state_of("acme", "m2").deferred_ts == HOUR.end(T)
    assert counter_slots(aws.tables["counters"]) == {key("minute", T): 1, key("hour", T): 1}
    [event] = records(api)["m2"]["history"]
    assert event["metadata"]["deferred_reason"] == "rate_limit_exceeded: limit_per_hour 1"


def test_counters_expire_after_their_window(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    import boto3

    setup_account(api, smtp_server, limit_per_minute=5)
    add(api, "m1")
    deliver_all(take_queued(aws.queues["medium"]), FrozenClock(T))
    [item] = boto3.client("dynamodb").scan(TableName=aws.tables["counters"])["Items"]
    assert int(item["expires_at"]["N"]) == MINUTE.end(T) + 3600
