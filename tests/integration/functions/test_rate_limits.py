"""Per-account rate limits, end to end over moto and a real SMTP server, with the sender's
clock held by the test: limits hold over rolling windows (any span of the window's length,
not aligned minutes), what goes, what is deferred until a slot frees up (not a retry), what a
rejecting account fails, how the window items are charged and given back, and how a sender
whose read is out of date (another sender took a slot meanwhile) counts the race it lost."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from mailproxy import runtime
from mailproxy.domain.ports import AttemptOutcome, Claimed, Retry
from mailproxy.domain.rate_limit import SlotFree, SlotRelease, Window, WindowCounts, take_slot
from mailproxy.domain.status import MessageStatus
from mailproxy.service.delivery import CLAIM_ATTEMPTS, Invocation, Outcome, deliver
from tests.support.delivery_clock import (
    FrozenClock,
    counter_buckets,
    deliver_all,
    deliver_one,
    delivery_context,
    live_reference,
    state_of,
    take_queued,
)
from tests.support.handlers import ApiClient, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.sqs import queue_depths

# 2033-05-18 03:33:20.25 UTC: after any submission a test makes, on no window boundary,
# 0.25 s into the 5 s sub-bucket 03:33:20-03:33:25.
T = 2_000_000_000.25
SECOND = Window("second", 1, 0)
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


def key(window: Window) -> str:
    return f"acme#main#{window.name}"


def sent_times(*ids: str) -> list[float]:
    times = [state_of("acme", i).sent_ts for i in ids]
    assert all(at is not None for at in times), times
    return [float(at) for at in times if at is not None]


def most_in_any_span(times: list[float], length: float) -> int:
    """The most of these times any span [t, t + length) holds (a span starting at one of
    them is as full as any)."""
    return max(sum(1 for other in times if start <= other < start + length) for start in times)


# -- defer ------------------------------------------------------------------------------------


def test_over_the_minute_limit_the_rest_wait_until_a_slot_frees_up(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given an account allowing 3 messages a minute, and 5 messages queued
    setup_account(api, smtp_server, limit_per_minute=3)
    add(api, "m1", "m2", "m3", "m4", "m5")
    clock = FrozenClock(T)
    # When one sender invocation handles them all at T
    outcomes = deliver_all(take_queued(aws.queues["medium"]), clock)
    # Then 3 are sent and 2 are deferred until the first slot frees up: 60 s after the end
    # of T's sub-bucket (03:33:25), at 03:34:25, not at the end of T's aligned minute
    assert outcomes == {
        "m1": Outcome.SENT,
        "m2": Outcome.SENT,
        "m3": Outcome.SENT,
        "m4": Outcome.RATE_LIMITED,
        "m5": Outcome.RATE_LIMITED,
    }
    assert mail_ids(smtp_server) == ["m1", "m2", "m3"]
    slot_frees = 2_000_000_065
    stored = records(api)
    for deferred in ("m4", "m5"):
        record = stored[deferred]
        assert record["status"] == "deferred"
        assert record["deferred_ts"] == slot_frees
        assert "error" not in record
        [event] = record["history"]
        assert event["event_type"] == "deferred"
        assert event["metadata"]["deferred_ts"] == slot_frees
        assert event["metadata"]["deferred_reason"] == "rate_limit_exceeded: limit_per_minute 3"
        assert "retry" not in event["metadata"]
    # and the deferral is not a retry
    assert state_of("acme", "m4").retries == 0
    assert live_reference("acme", "m4").retries == 0
    # and a new reference waits, held back (not visible yet), on the queue for each of them
    assert queue_depths(aws.queues)["medium"] == 2
    assert take_queued(aws.queues["medium"]) == []

    # When their references arrive at 03:34:00, where an aligned minute would start afresh
    clock.set(2_000_000_040)
    outcomes = deliver_all([live_reference("acme", "m4"), live_reference("acme", "m5")], clock)
    # Then they are handed on, unsent: the last 60 s still hold 3 sends
    assert outcomes == {"m4": Outcome.HANDED_ON, "m5": Outcome.HANDED_ON}
    assert mail_ids(smtp_server) == ["m1", "m2", "m3"]

    # When the clock reaches the time the slots free up
    clock.set(slot_frees)
    outcomes = deliver_all([live_reference("acme", "m4"), live_reference("acme", "m5")], clock)
    # Then both are sent, each after its deferral
    assert outcomes == {"m4": Outcome.SENT, "m5": Outcome.SENT}
    assert mail_ids(smtp_server) == ["m1", "m2", "m3", "m4", "m5"]
    stored = records(api)
    assert {i: r["status"] for i, r in stored.items()} == dict.fromkeys(stored, "sent")
    assert event_types(stored["m4"]) == ["deferred", "sent"]
    assert event_types(stored["m1"]) == ["sent"]
    # and the minute's item holds the 2 sends of slot_frees' sub-bucket: T's, which no
    # longer counts, was removed when that one was started
    assert counter_buckets(aws.tables["counters"]) == {key(MINUTE): {MINUTE.bucket(slot_frees): 2}}


def test_a_burst_straddling_a_minute_boundary_is_held_to_the_limit_over_any_60_s(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 3 a minute, and five messages delivered at 03:33:59, a second before a minute
    setup_account(api, smtp_server, limit_per_minute=3)
    add(api, "m1", "m2", "m3", "m4", "m5")
    late = 2_000_000_039.0
    clock = FrozenClock(late, tick=0.001)
    outcomes = deliver_all(take_queued(aws.queues["medium"]), clock)
    # Then 3 go, and 2 are deferred until a slot frees: 60 s after their sub-bucket
    # (03:33:55-03:34:00) ends, at 03:35:00
    assert list(outcomes.values()) == [Outcome.SENT] * 3 + [Outcome.RATE_LIMITED] * 2
    slot_frees = 2_000_000_100
    assert {state_of("acme", i).deferred_ts for i in ("m4", "m5")} == {slot_frees}
    # When the new minute begins a second later and their references come back
    clock.set(late + 1)
    later = [live_reference("acme", "m4"), live_reference("acme", "m5")]
    # Then nothing more goes (an aligned minute would have let both go at once)
    assert deliver_all(later, clock) == {"m4": Outcome.HANDED_ON, "m5": Outcome.HANDED_ON}
    assert len(smtp_server.received) == 3
    # When the slot frees up / Then the two go
    clock.set(slot_frees)
    later = [live_reference("acme", "m4"), live_reference("acme", "m5")]
    assert deliver_all(later, clock) == {"m4": Outcome.SENT, "m5": Outcome.SENT}
    # and no 60 s held more than 3 of the five sends
    times = sent_times("m1", "m2", "m3", "m4", "m5")
    assert most_in_any_span(times, 60) == 3


def test_a_reference_arriving_before_a_slot_frees_is_handed_on(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given a message deferred by a full minute
    setup_account(api, smtp_server, limit_per_minute=1)
    add(api, "m1", "m2")
    clock = FrozenClock(T)
    deliver_all(take_queued(aws.queues["medium"]), clock)
    slot_frees = MINUTE.frees_at(MINUTE.bucket(T))
    assert state_of("acme", "m2").deferred_ts == slot_frees
    # When its reference comes back early, while the minute is still full
    clock.set(T + 1)
    outcome = deliver_one(live_reference("acme", "m2"), clock)
    # Then it is handed on, untouched, nothing sent and no slot taken
    assert outcome is Outcome.HANDED_ON
    assert mail_ids(smtp_server) == ["m1"]
    assert state_of("acme", "m2").deferred_ts == slot_frees
    assert counter_buckets(aws.tables["counters"]) == {key(MINUTE): {MINUTE.bucket(T): 1}}


def test_a_rate_deferral_does_not_use_up_a_retry(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given a message deferred by a full minute (its first attempt)
    setup_account(api, smtp_server, limit_per_minute=1)
    add(api, "m1", "m2")
    clock = FrozenClock(T)
    assert deliver_all(take_queued(aws.queues["medium"]), clock)["m2"] is Outcome.RATE_LIMITED
    # When every later attempt meets a 451, each at the time its message was deferred to
    smtp_server.handler.data_reply = GREYLISTED
    outcomes = []
    for _ in range(6):
        clock.set((state_of("acme", "m2").deferred_ts or 0) + 0.5)
        outcomes.append(deliver_one(live_reference("acme", "m2"), clock))
    # Then it gets all 5 retries after its deferral, and fails on the sixth failure
    assert outcomes == [Outcome.DEFERRED] * 5 + [Outcome.ERROR]
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
    assert list(outcomes.values()) == [Outcome.SENT] * 2 + [Outcome.ERROR] * 2
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
    assert counter_buckets(aws.tables["counters"]) == {key(MINUTE): {MINUTE.bucket(T): 2}}


def test_a_rejecting_account_reads_again_before_it_fails_on_an_earlier_read(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 1 a minute, rejecting; a sender's invocation that found the minute full (its
    # one slot held by another sender's claim of m0)
    setup_account(api, smtp_server, limit_per_minute=1, limit_behavior="reject")
    add(api, "m0", "m1", "m2")
    [m0, m1, m2] = take_queued(aws.queues["medium"])
    store = runtime.store()
    window = Window("minute", 60, 1)
    slot = take_slot(window, WindowCounts(key(window)), T)
    assert isinstance(slot, SlotFree)
    holder = store.claim(
        "acme",
        "m0",
        m0.ticket,
        state_of("acme", "m0").body_version,
        now=T,
        lease_seconds=360,
        claim_token="holder",
        charges=[slot.write],
    )
    assert isinstance(holder, Claimed)
    invocation = Invocation.prepare(delivery_context(FrozenClock(T)), [m1, m2])
    assert deliver(m1, invocation) is Outcome.ERROR
    # When the holder's send fails for now and gives the slot back
    store.finish_attempt(
        AttemptOutcome(
            "acme",
            "m0",
            "holder",
            T,
            [],
            Retry(
                "451 try later",
                T + 60,
                "later",
                retries=1,
                release=[SlotRelease(key(window), window.bucket(T))],
            ),
        )
    )
    # Then the same invocation, about to reject m2 on what it read, reads again and sends it
    assert deliver(m2, invocation) is Outcome.SENT
    assert mail_ids(smtp_server) == ["m2"]
    assert counter_buckets(aws.tables["counters"]) == {key(MINUTE): {MINUTE.bucket(T): 1}}


# -- each window ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit_field", "window", "slot_frees"),
    [
        # 100 ms: 03:33:20.2-20.3, then 1 s: 03:33:21.3, rounded up to the second
        ("limit_per_second", SECOND, 2_000_000_002),
        # 5 s: 03:33:20-25, then 60 s: 03:34:25
        ("limit_per_minute", MINUTE, 2_000_000_065),
        # 5 min: 03:30-03:35, then an hour: 04:35:00
        ("limit_per_hour", HOUR, 2_000_003_700),
        # 2 h: 02:00-04:00, then a day: 04:00 the next day
        ("limit_per_day", DAY, 2_000_088_000),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_window_is_enforced_over_its_rolling_length(
    api: ApiClient,
    aws: Any,
    smtp_server: SmtpServer,
    limit_field: str,
    window: Window,
    slot_frees: int,
) -> None:
    # Given an account allowing 2 messages per window, and 3 messages
    setup_account(api, smtp_server, **{limit_field: 2})
    add(api, "m1", "m2", "m3")
    # When delivered at T
    outcomes = deliver_all(take_queued(aws.queues["medium"]), FrozenClock(T))
    # Then 2 are sent and the third waits until a slot frees: a window after the end of
    # T's sub-bucket
    assert outcomes["m3"] is Outcome.RATE_LIMITED
    assert mail_ids(smtp_server) == ["m1", "m2"]
    assert slot_frees == window.frees_at(window.bucket(T))
    record = records(api)["m3"]
    assert record["status"] == "deferred"
    assert record["deferred_ts"] == slot_frees
    [event] = record["history"]
    assert event["metadata"]["deferred_reason"] == f"rate_limit_exceeded: {limit_field} 2"
    assert state_of("acme", "m3").retries == 0
    # and it goes once the slot is free, a window and at most a sub-bucket after T
    assert window.seconds < slot_frees - T <= window.seconds * (1 + 1 / window.buckets) + 1
    assert deliver_one(live_reference("acme", "m3"), FrozenClock(slot_frees)) is Outcome.SENT
    assert mail_ids(smtp_server) == ["m1", "m2", "m3"]


def test_the_day_window_rolls_over_utc_midnight(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given a per-day limit that is full at 23:59:59 UTC
    setup_account(api, smtp_server, limit_per_day=1)
    add(api, "m1", "m2")
    midnight = (int(T) // 86400 + 1) * 86400
    outcomes = deliver_all(take_queued(aws.queues["medium"]), FrozenClock(midnight - 1.0))
    # Then the deferral lasts a day: the send of 23:59:59 counts until 24 h after its 2 h
    # sub-bucket (22:00-24:00) ends, not until midnight
    assert outcomes["m2"] is Outcome.RATE_LIMITED
    assert state_of("acme", "m2").deferred_ts == midnight + 86400
    # and at midnight, where an aligned day would start afresh, the message still waits
    at_midnight = deliver_one(live_reference("acme", "m2"), FrozenClock(midnight))
    assert at_midnight is Outcome.HANDED_ON
    next_day = FrozenClock(midnight + 86400)
    assert deliver_one(live_reference("acme", "m2"), next_day) is Outcome.SENT


# -- slots given back, windows charged together -----------------------------------------------


def test_a_temporary_failure_gives_its_slot_back(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given an account allowing 1 message a minute, retrying after 5 s, on a greylisting server
    setup_account(api, smtp_server, limit_per_minute=1, retry_schedule=[5])
    add(api, "m1")
    clock = FrozenClock(T)
    smtp_server.handler.data_reply = GREYLISTED
    # When the first attempt meets a 451
    assert deliver_all(take_queued(aws.queues["medium"]), clock) == {"m1": Outcome.DEFERRED}
    # Then its slot is given back
    assert counter_buckets(aws.tables["counters"]) == {key(MINUTE): {MINUTE.bucket(T): 0}}
    # and the retry, within the minute, can still go
    smtp_server.handler.data_reply = None
    clock.set(T + 5)
    assert deliver_one(live_reference("acme", "m1"), clock) is Outcome.SENT
    assert counter_buckets(aws.tables["counters"]) == {
        key(MINUTE): {MINUTE.bucket(T): 0, MINUTE.bucket(T + 5): 1}
    }
    assert event_types(records(api)["m1"]) == ["deferred", "sent"]
    # while another message within 60 s of that send now finds the minute full
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
    assert deliver_one(first, clock) is Outcome.DEFERRED
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
    # Then the hour holds one send: the refused sends took none of its slots
    assert counter_buckets(aws.tables["counters"]) == {
        key(MINUTE): {MINUTE.bucket(T): 1},
        key(HOUR): {HOUR.bucket(T): 1},
    }


def test_a_full_hour_takes_no_minute_slot(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 5 a minute but 1 an hour, and 2 messages
    setup_account(api, smtp_server, limit_per_minute=5, limit_per_hour=1)
    add(api, "m1", "m2")
    outcomes = deliver_all(take_queued(aws.queues["medium"]), FrozenClock(T))
    # Then the second waits until the hour has a slot, and the minute was not charged for it
    assert outcomes["m2"] is Outcome.RATE_LIMITED
    assert state_of("acme", "m2").deferred_ts == HOUR.frees_at(HOUR.bucket(T))
    assert counter_buckets(aws.tables["counters"]) == {
        key(MINUTE): {MINUTE.bucket(T): 1},
        key(HOUR): {HOUR.bucket(T): 1},
    }
    [event] = records(api)["m2"]["history"]
    assert event["metadata"]["deferred_reason"] == "rate_limit_exceeded: limit_per_hour 1"


def test_a_window_item_expires_once_nothing_in_it_counts(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given one send at T / Then its item may go an hour after that send stops counting
    setup_account(api, smtp_server, limit_per_minute=5)
    add(api, "m1")
    deliver_all(take_queued(aws.queues["medium"]), FrozenClock(T))
    [item] = boto3.client("dynamodb").scan(TableName=aws.tables["counters"])["Items"]
    assert int(item["expires_at"]["N"]) == MINUTE.frees_at(MINUTE.bucket(T)) + 3600


def test_the_window_item_stays_small_whatever_the_traffic(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 100 a minute and a send every 7 s for 10 minutes (86 sends)
    setup_account(api, smtp_server, limit_per_minute=100)
    ids = [f"m{n:02d}" for n in range(86)]
    add(api, *ids)
    references = take_queued(aws.queues["medium"])
    clock = FrozenClock(T)
    invocation = Invocation.prepare(delivery_context(clock), references)
    for n, reference in enumerate(references):
        clock.set(T + 7 * n)
        assert deliver(reference, invocation) is Outcome.SENT
    # Then the item holds only the sub-buckets of the last minute (and one more)
    [buckets] = counter_buckets(aws.tables["counters"]).values()
    assert len(buckets) <= MINUTE.buckets + 1
    assert min(buckets) >= MINUTE.oldest_counted(T + 7 * 85)


# -- senders whose reads are out of date ------------------------------------------------------


def test_a_sender_that_lost_the_race_for_the_last_slot_defers_without_charging(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 2 a minute, and two sender invocations at T, each with its own read of the item
    setup_account(api, smtp_server, limit_per_minute=2)
    add(api, "m1", "m2", "m3")
    [m1, m2, m3] = take_queued(aws.queues["medium"])
    clock = FrozenClock(T)
    first = Invocation.prepare(delivery_context(clock), [m1, m3])
    second = Invocation.prepare(delivery_context(clock), [m2])
    assert deliver(m1, first) is Outcome.SENT  # the first reads the item: 1 send
    # When the second takes the last slot, then the first, on its read, tries for one more
    assert deliver(m2, second) is Outcome.SENT
    outcome = deliver(m3, first)
    # Then the first finds out, reads again and defers m3 until a slot frees up
    assert outcome is Outcome.RATE_LIMITED
    assert state_of("acme", "m3").deferred_ts == MINUTE.frees_at(MINUTE.bucket(T))
    # and the window holds the two sends, no more
    assert counter_buckets(aws.tables["counters"]) == {key(MINUTE): {MINUTE.bucket(T): 2}}
    assert mail_ids(smtp_server) == ["m1", "m2"]


def test_a_sender_whose_read_missed_a_new_sub_bucket_reads_again_and_sends(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given 5 a minute; a first invocation that sent at T (and keeps its read of the item)
    setup_account(api, smtp_server, limit_per_minute=5)
    add(api, "m1", "m2", "m3")
    [m1, m2, m3] = take_queued(aws.queues["medium"])
    clock = FrozenClock(T)
    first = Invocation.prepare(delivery_context(clock), [m1, m3])
    assert deliver(m1, first) is Outcome.SENT
    # When another invocation starts the next sub-bucket, and the first sends again there
    clock.set(T + 5)
    assert deliver_one(m2, clock) is Outcome.SENT
    clock.set(T + 5.1)
    # Then the first one's write on its old read fails, it reads again, and its send goes
    assert deliver(m3, first) is Outcome.SENT
    # counted once, in the sub-bucket the other one started
    assert counter_buckets(aws.tables["counters"]) == {
        key(MINUTE): {MINUTE.bucket(T): 1, MINUTE.bucket(T + 5): 2}
    }


def test_a_sender_that_keeps_losing_the_race_hands_the_message_on(
    api: ApiClient, aws: Any, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 10 a minute, an item with one send, and other senders that change the item
    # between every read of this sender and its write
    setup_account(api, smtp_server, limit_per_minute=10)
    add(api, "m1", "m2")
    [m1, m2] = take_queued(aws.queues["medium"])
    clock = FrozenClock(T)
    assert deliver_one(m1, clock) is Outcome.SENT
    store = runtime.store()
    read = store.get_window_counts
    reads: list[int] = []

    def read_then_someone_writes(keys: Any) -> dict[str, WindowCounts]:
        found = read(keys)
        reads.append(len(found))
        for counter_key in found:
            boto3.client("dynamodb").update_item(
                TableName=aws.tables["counters"],
                Key={"key": {"S": counter_key}},
                UpdateExpression="ADD version :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        return found

    monkeypatch.setattr(store, "get_window_counts", read_then_someone_writes)
    # When m2 is delivered
    outcome = deliver_one(m2, clock)
    # Then after a bounded number of tries it is handed on, to try again in a moment
    assert outcome is Outcome.HANDED_ON
    assert len(reads) == CLAIM_ATTEMPTS
    assert mail_ids(smtp_server) == ["m1"]
    state = state_of("acme", "m2")
    assert state.status is MessageStatus.PENDING
    assert state.retries == 0
    assert state.ticket != m2.ticket
    assert queue_depths(aws.queues)["medium"] == 1
    # and none of its tries took a slot
    assert counter_buckets(aws.tables["counters"]) == {key(MINUTE): {MINUTE.bucket(T): 1}}
