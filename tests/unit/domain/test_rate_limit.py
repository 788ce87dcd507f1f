"""Rate limits over rolling windows: sub-buckets aligned to the epoch, a conservative count,
the write that takes a slot (and when it must not hold), when a full window frees a slot,
and the decision over a full window (defer until then, or reject)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from mailproxy.domain.account import Account
from mailproxy.domain.rate_limit import (
    CHARGE_AHEAD_SECONDS,
    COUNTER_TTL_MARGIN_SECONDS,
    RATE_LIMIT_EXCEEDED,
    DeferUntil,
    LimitReached,
    RejectOverLimit,
    SlotFree,
    SlotRelease,
    SlotsFree,
    SlotWrite,
    Window,
    WindowCounts,
    WindowFull,
    after_release,
    combine_writes,
    counted,
    give_back,
    may_charge_ahead,
    over_limit,
    plan_send,
    take_slot,
    windows_for,
)

# 2023-11-14 22:13:20.250 UTC: not on any window boundary, 0.25 s into a 5 s sub-bucket.
NOW = 1_700_000_000.25

SECOND = Window("second", 1, 10)
MINUTE = Window("minute", 60, 3)
HOUR = Window("hour", 3600, 100)
DAY = Window("day", 86400, 1000)
KEY = "acme#main#minute"


def account(**limits: Any) -> Account:
    return Account(id="main", tenant_id="acme", host="smtp.acme.test", port=25, **limits)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def apply(state: WindowCounts, write: SlotWrite) -> WindowCounts | None:
    """What the store does with a write (domain/rate_limit.py's SlotWrite): the item after
    it, or None when its condition does not hold (nothing written)."""
    counts = dict(state.counts)
    if write.version == 0:
        if state.version:
            return None
        return WindowCounts(write.key, write.new_version, {write.bucket: 1})
    if state.version != write.version:
        return None
    if write.below is not None:
        if counts.get(write.bucket, 0) >= write.below:
            return None
        counts[write.bucket] += 1
        return WindowCounts(write.key, write.version, counts)
    if write.newest_at_most is not None:
        newest, at_most = write.newest_at_most
        if counts.get(newest, 0) > at_most:
            return None
    for dropped in write.drop:
        counts.pop(dropped, None)
    counts[write.bucket] = 1
    return WindowCounts(write.key, write.new_version, counts)


def release(state: WindowCounts, given: SlotRelease) -> WindowCounts:
    """What the store does with a slot given back."""
    counts = {**state.counts, given.bucket: state.counts.get(given.bucket, 0) - 1}
    return WindowCounts(state.key, state.version, counts)


def sends(window: Window, times: list[float], state: WindowCounts | None = None) -> WindowCounts:
    """The item after one sender sent at each of these times (each one allowed)."""
    state = state or WindowCounts(KEY)
    for at in times:
        decision = take_slot(window, state, at)
        assert isinstance(decision, SlotFree), f"no slot at {at}"
        written = apply(state, decision.write)
        assert written is not None
        state = written
    return state


def most_in_any_span(times: list[float], length: float) -> int:
    """The most of these times any span [t, t + length) holds (a span starting at one of
    them is as full as any)."""
    ordered = sorted(times)
    return max(
        (sum(1 for other in ordered if start <= other < start + length) for start in ordered),
        default=0,
    )


# -- sub-buckets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "length"),
    [(SECOND, 0.1), (MINUTE, 5), (HOUR, 300), (DAY, 7200)],
    ids=lambda value: value.name if isinstance(value, Window) else str(value),
)
def test_each_window_counts_in_sub_buckets_aligned_to_the_epoch(
    window: Window, length: float
) -> None:
    # Given a window / When now's sub-bucket is taken / Then it is the aligned span of
    # `length` seconds holding now, and the window holds a whole number of them
    bucket = window.bucket(NOW)
    assert bucket * length <= NOW < (bucket + 1) * length
    assert window.buckets * length == pytest.approx(window.seconds)


def test_a_boundary_instant_opens_a_new_sub_bucket() -> None:
    # Given the exact start of a 5 s sub-bucket / When taken / Then it is that one
    start = 1_700_000_005
    assert MINUTE.bucket(start) == MINUTE.bucket(NOW) + 1
    assert MINUTE.bucket(start - 0.001) == MINUTE.bucket(NOW)


def test_the_window_reaches_back_as_many_sub_buckets_as_it_holds() -> None:
    # Given now, 22:13:20.25 / When the oldest counted minute sub-bucket is taken
    # Then it is the one of 22:12:20 (it still overlaps the last 60 s), not 22:12:15
    oldest = MINUTE.oldest_counted(NOW)
    assert utc(oldest * 5) == datetime(2023, 11, 14, 22, 12, 20, tzinfo=UTC)
    assert MINUTE.bucket(NOW) - oldest == 12


def test_a_send_frees_its_slot_a_window_after_its_sub_bucket_ends() -> None:
    # Given a send in the sub-bucket 22:13:20 to 22:13:25 / When does it stop counting
    # Then at 22:14:25: more than 60 s after it, at most 65 s after it
    frees = MINUTE.frees_at(MINUTE.bucket(NOW))
    assert utc(frees) == datetime(2023, 11, 14, 22, 14, 25, tzinfo=UTC)
    assert 60 < frees - NOW <= 65
    # and from then on its sub-bucket is no longer counted
    assert MINUTE.oldest_counted(frees) == MINUTE.bucket(NOW) + 1
    assert MINUTE.oldest_counted(frees - 0.001) == MINUTE.bucket(NOW)


def test_a_second_frees_its_slot_on_a_whole_second() -> None:
    # Given a send at .25 s, in the sub-bucket .2 to .3 / When does it stop counting
    # Then 1 s after .3, rounded up to the whole second (deferrals are whole seconds)
    frees = SECOND.frees_at(SECOND.bucket(NOW))
    assert frees == 1_700_000_002
    assert isinstance(frees, int)


# -- counter keys and expiry ------------------------------------------------------------------


def test_one_counter_item_per_tenant_account_and_window() -> None:
    # Given the same window of one account at two times / When keyed / Then one item
    assert MINUTE.counter_key("acme", "main") == "acme#main#minute"
    keys = {
        MINUTE.counter_key("acme", "main"),
        HOUR.counter_key("acme", "main"),
        MINUTE.counter_key("other", "main"),
        MINUTE.counter_key("acme", "backup"),
    }
    assert len(keys) == 4


def test_a_counter_expires_a_margin_after_its_newest_send_stops_counting() -> None:
    bucket = MINUTE.bucket(NOW)
    assert MINUTE.expires_at(bucket) == MINUTE.frees_at(bucket) + COUNTER_TTL_MARGIN_SECONDS


# -- windows_for ------------------------------------------------------------------------------


def test_no_limits_means_no_windows() -> None:
    assert windows_for(account()) == []


def test_a_null_or_zero_limit_is_no_limit() -> None:
    # Given a zero per-second and a null per-hour limit / When windowed / Then both skipped
    windows = windows_for(
        account(limit_per_second=0, limit_per_minute=5, limit_per_hour=None, limit_per_day=100)
    )
    assert windows == [Window("minute", 60, 5), Window("day", 86400, 100)]


def test_every_limit_gives_its_window_shortest_first() -> None:
    windows = windows_for(
        account(limit_per_second=1, limit_per_minute=2, limit_per_hour=3, limit_per_day=4)
    )
    assert [(w.name, w.seconds, w.limit) for w in windows] == [
        ("second", 1, 1),
        ("minute", 60, 2),
        ("hour", 3600, 3),
        ("day", 86400, 4),
    ]


# -- the count --------------------------------------------------------------------------------


def test_sends_count_while_their_sub_bucket_overlaps_the_last_window() -> None:
    # Given sends 60.5 s, 60.1 s and 59.9 s ago (22:12:19.75, 22:12:20.15, 22:12:20.35)
    state = sends(Window("minute", 60, 10), [NOW - 60.5, NOW - 60.1, NOW - 59.9])
    # When counted now / Then the first is out (its sub-bucket ended at 22:12:20, more than
    # 60 s ago); the second still counts, as the third does: their sub-bucket, 22:12:20 to
    # 22:12:25, overlaps the last 60 s
    assert counted(MINUTE, state, NOW) == 2


def test_a_count_never_goes_below_zero_for_a_sub_bucket() -> None:
    # Given a sub-bucket that reads -1 (given back to after it was removed as expired)
    bucket = MINUTE.bucket(NOW)
    state = WindowCounts(KEY, 3, {bucket - 1: -1, bucket: 2})
    # When counted / Then it adds nothing, and takes nothing away
    assert counted(MINUTE, state, NOW) == 2


# -- take_slot --------------------------------------------------------------------------------


def test_the_first_send_creates_the_item() -> None:
    # Given no item yet / When a send is decided
    decision = take_slot(MINUTE, WindowCounts(KEY), NOW)
    # Then it is free: the item is created (only if still absent) with one send now
    assert isinstance(decision, SlotFree)
    bucket = MINUTE.bucket(NOW)
    assert decision.write == SlotWrite(
        KEY, bucket, version=0, new_version=1, expires_at=MINUTE.expires_at(bucket)
    )
    assert decision.after == WindowCounts(KEY, 1, {bucket: 1})


def test_a_send_in_the_newest_sub_bucket_adds_to_it_within_the_room_left() -> None:
    # Given 4 a minute, one send 30 s ago and one 0.2 s ago (in now's sub-bucket)
    window = Window("minute", 60, 4)
    state = sends(window, [NOW - 30, NOW - 0.2])
    # When a send is decided now
    decision = take_slot(window, state, NOW)
    # Then it adds to the newest sub-bucket, under the same version, as long as that holds
    # fewer than 3 (the send 30 s ago leaves room for 3 there)
    assert isinstance(decision, SlotFree)
    assert decision.write == SlotWrite(KEY, window.bucket(NOW), 2, 2, below=3)
    assert decision.after.counts[window.bucket(NOW)] == 2


def test_a_send_in_a_new_sub_bucket_moves_the_version_and_drops_what_expired() -> None:
    # Given an item with a send 10 s ago, and a sub-bucket of 2 min ago still in it (a slot
    # given back there after it was removed)
    window = Window("minute", 60, 4)
    old, recent = window.bucket(NOW - 120), window.bucket(NOW - 10)
    state = WindowCounts(KEY, 2, {old: -1, recent: 1})
    # When a send is decided now, in a sub-bucket of its own
    decision = take_slot(window, state, NOW)
    # Then it starts now's sub-bucket if the newest one (10 s ago) still holds at most the
    # one send read, moves the version on, and removes the one of 2 min ago
    assert isinstance(decision, SlotFree)
    current = window.bucket(NOW)
    assert decision.write == SlotWrite(
        KEY,
        current,
        version=2,
        new_version=3,
        newest_at_most=(recent, 1),
        drop=(old,),
        expires_at=window.expires_at(current),
    )
    assert decision.after == WindowCounts(KEY, 3, {recent: 1, current: 1})


def test_a_sender_whose_clock_is_behind_adds_to_the_newer_sub_bucket() -> None:
    # Given a sub-bucket started by a sender whose clock is 3 s ahead
    window = Window("minute", 60, 4)
    state = sends(window, [NOW + 5])
    # When this sender decides at NOW / Then it charges that later sub-bucket (it counts
    # for longer: only more cautious)
    decision = take_slot(window, state, NOW)
    assert isinstance(decision, SlotFree)
    assert decision.write.bucket == window.bucket(NOW + 5)
    assert decision.write.below == 4


def test_a_full_window_frees_a_slot_when_its_oldest_sends_have_left() -> None:
    # Given 3 a minute, sent 50 s, 20 s and 1 s ago
    state = sends(MINUTE, [NOW - 50, NOW - 20, NOW - 1])
    # When a fourth is decided now / Then the window is full until the send of 50 s ago
    # stops counting: 60 s after the end of its sub-bucket (22:12:30.25 → 22:12:35)
    decision = take_slot(MINUTE, state, NOW)
    assert isinstance(decision, WindowFull)
    assert utc(decision.until) == datetime(2023, 11, 14, 22, 13, 35, tzinfo=UTC)
    assert decision.until == MINUTE.frees_at(MINUTE.bucket(NOW - 50))
    # and then it is free
    assert isinstance(take_slot(MINUTE, state, decision.until), SlotFree)
    assert isinstance(take_slot(MINUTE, state, decision.until - 0.001), WindowFull)


def test_a_window_full_of_older_sub_buckets_waits_only_for_as_many_as_needed() -> None:
    # Given 3 a minute with two sends 40 s ago and one now: full
    state = sends(MINUTE, [NOW - 40, NOW - 40, NOW])
    # When decided now / Then it waits for the two of 40 s ago (one slot back is enough),
    # not for the one sent now
    decision = take_slot(MINUTE, state, NOW)
    assert isinstance(decision, WindowFull)
    assert decision.until == MINUTE.frees_at(MINUTE.bucket(NOW - 40))
    assert decision.until < MINUTE.frees_at(MINUTE.bucket(NOW))


def test_sends_that_have_left_the_window_leave_their_slots() -> None:
    # Given 3 a minute, all three sent 70 s ago / When decided now / Then free
    state = sends(MINUTE, [NOW - 70] * 3)
    assert isinstance(take_slot(MINUTE, state, NOW), SlotFree)


# -- the limit holds over every span (the reason for all of the above) -----------------------


def test_a_burst_straddling_a_minute_boundary_does_not_double_the_limit() -> None:
    # Given 3 a minute, and five sends attempted at 22:13:59 (one second before 22:14)
    late = 1_700_000_039.0
    state = sends(MINUTE, [late] * 3)
    # When the other two are decided at 22:13:59 and again at 22:14:00
    at_59 = take_slot(MINUTE, state, late)
    at_00 = take_slot(MINUTE, state, late + 1)
    # Then both find the window full, until a slot frees up: 60 s after the end of the
    # sub-bucket 22:13:55-22:14:00, that is 22:15:00
    assert isinstance(at_59, WindowFull)
    assert isinstance(at_00, WindowFull)
    assert at_59.until == at_00.until
    assert utc(at_59.until) == datetime(2023, 11, 14, 22, 15, 0, tzinfo=UTC)
    # and then the two go
    state = sends(MINUTE, [at_59.until] * 2, state)
    times = [late] * 3 + [at_59.until] * 2
    assert most_in_any_span(times, 60) == 3


@pytest.mark.parametrize("window", [SECOND, Window("minute", 60, 7), HOUR], ids=str)
def test_one_sender_deferring_to_the_time_given_never_passes_the_limit_in_any_span(
    window: Window,
) -> None:
    # Given a sender that tries at random moments over five windows, and that tries a
    # deferred message again at exactly the time its deferral named
    rng = random.Random(window.seconds)
    wanted = sorted(NOW + rng.uniform(0, 5 * window.seconds) for _ in range(8 * window.limit))
    state, sent, pending = WindowCounts(KEY), [], list(wanted)
    while pending:
        at = pending.pop(0)
        decision = take_slot(window, state, at)
        if isinstance(decision, WindowFull):
            assert decision.until > at
            pending.append(decision.until)
            pending.sort()
            continue
        written = apply(state, decision.write)
        assert written is not None
        state, sent = written, [*sent, at]
    # Then no span of the window's length held more than the limit
    assert most_in_any_span(sent, window.seconds) == window.limit
    # and the item stayed small: no more sub-buckets than one window's and one more
    assert len(state.counts) <= window.buckets + 1


# -- concurrent senders: the write's condition ------------------------------------------------


def test_two_senders_that_read_the_same_item_cannot_both_take_the_last_slot() -> None:
    # Given 3 a minute with two sent in now's sub-bucket, read by two senders
    state = sends(MINUTE, [NOW - 0.2, NOW - 0.1])
    first, second = take_slot(MINUTE, state, NOW), take_slot(MINUTE, state, NOW)
    assert isinstance(first, SlotFree)
    assert isinstance(second, SlotFree)
    # When the first one's write lands
    after_first = apply(state, first.write)
    assert after_first is not None
    # Then the second one's does not, and read again, the window is full
    assert apply(after_first, second.write) is None
    assert isinstance(take_slot(MINUTE, after_first, NOW), WindowFull)


def test_senders_filling_one_sub_bucket_do_not_undo_each_others_reads() -> None:
    # Given 10 a minute, read by three senders after one send in now's sub-bucket
    window = Window("minute", 60, 10)
    state = sends(window, [NOW - 0.2])
    decisions = [take_slot(window, state, NOW) for _ in range(3)]
    # When their writes land one after the other / Then each holds (no read again needed)
    for decision in decisions:
        assert isinstance(decision, SlotFree)
        written = apply(state, decision.write)
        assert written is not None
        state = written
    assert counted(window, state, NOW) == 4


def test_starting_a_sub_bucket_makes_other_reads_out_of_date() -> None:
    # Given 10 a minute and an item read by two senders, the second with a clock behind
    window = Window("minute", 60, 10)
    state = sends(window, [NOW - 6])
    starts_new = take_slot(window, state, NOW)
    adds_to_old = take_slot(window, state, NOW - 5.5)
    assert isinstance(starts_new, SlotFree)
    assert isinstance(adds_to_old, SlotFree)
    assert adds_to_old.write.below is not None
    # When the first one starts now's sub-bucket
    started = apply(state, starts_new.write)
    assert started is not None
    # Then the second one's write to the older sub-bucket no longer holds: that sub-bucket
    # must stay as the first one read it
    assert apply(started, adds_to_old.write) is None


def test_a_new_sub_bucket_is_not_started_on_a_newest_one_that_grew_meanwhile() -> None:
    # Given 2 a minute, one sent 10 s ago; two senders read that, one in that sub-bucket
    window = Window("minute", 60, 2)
    state = sends(window, [NOW - 10])
    starts_new = take_slot(window, state, NOW)
    adds = take_slot(window, state, NOW - 9.5)
    assert isinstance(starts_new, SlotFree)
    assert isinstance(adds, SlotFree)
    # When the one adding to the sub-bucket of 10 s ago lands first
    grown = apply(state, adds.write)
    assert grown is not None
    # Then the other one cannot start a new sub-bucket on the count it read
    assert apply(grown, starts_new.write) is None
    assert isinstance(take_slot(window, grown, NOW), WindowFull)


# -- plan_send --------------------------------------------------------------------------------


def test_a_send_takes_a_slot_in_every_window() -> None:
    # Given a minute and an hour, both with room / When planned / Then one write each
    hour = WindowCounts("acme#main#hour")
    plan = plan_send([MINUTE, HOUR], [WindowCounts(KEY), hour], NOW)
    assert isinstance(plan, SlotsFree)
    assert [slot.write.key for slot in plan.slots] == [KEY, "acme#main#hour"]


def test_one_full_window_stops_the_send_and_charges_no_other() -> None:
    # Given a full minute and an hour with room / When planned
    full_minute = sends(MINUTE, [NOW - 1] * 3)
    plan = plan_send([MINUTE, HOUR], [full_minute, WindowCounts("acme#main#hour")], NOW)
    # Then the send does not go, naming the minute, and there is nothing to write
    assert isinstance(plan, LimitReached)
    assert [found.window for found in plan.full] == [MINUTE]


# -- over_limit -------------------------------------------------------------------------------


def test_defer_waits_until_a_slot_frees_up() -> None:
    # Given a deferring account whose minute is full until T / When decided / Then until T
    decision = over_limit(account(limit_per_minute=3), [WindowFull(MINUTE, 1_700_000_065)])
    assert decision == DeferUntil(1_700_000_065, f"{RATE_LIMIT_EXCEEDED}: limit_per_minute 3")


def test_defer_waits_for_the_last_of_several_full_windows() -> None:
    # Given the minute and the hour both full, the hour for longer / When decided
    # Then wait until the hour has a slot, and the reason names the hour
    full = [WindowFull(MINUTE, 1_700_000_065), WindowFull(HOUR, 1_700_003_700)]
    decision = over_limit(account(limit_per_minute=3), full)
    assert isinstance(decision, DeferUntil)
    assert decision.due_ts == 1_700_003_700
    assert decision.reason == "rate_limit_exceeded: limit_per_hour 100"


def test_defer_is_independent_of_the_order_of_full_windows() -> None:
    full = [WindowFull(DAY, 1_700_080_000), WindowFull(SECOND, 1_700_000_002)]
    decision = over_limit(account(), full)
    assert decision == DeferUntil(1_700_080_000, "rate_limit_exceeded: limit_per_day 1000")


def test_reject_fails_with_rate_limit_exceeded() -> None:
    # Given a rejecting account over its minute / When decided / Then rate_limit_exceeded
    decision = over_limit(
        account(limit_per_minute=3, limit_behavior="reject"), [WindowFull(MINUTE, 1)]
    )
    assert decision == RejectOverLimit()
    assert isinstance(decision, RejectOverLimit)
    assert decision.reason == "rate_limit_exceeded"
    assert RATE_LIMIT_EXCEEDED == "rate_limit_exceeded"


# -- slots given back -------------------------------------------------------------------------


def test_a_send_that_failed_gives_back_its_slot_while_it_counts() -> None:
    # Given a slot taken at NOW
    decision = take_slot(MINUTE, WindowCounts(KEY), NOW)
    assert isinstance(decision, SlotFree)
    # When the send fails 30 s later / Then that slot is given back
    given = give_back(MINUTE, decision.write, NOW + 30)
    assert given == SlotRelease(KEY, MINUTE.bucket(NOW))
    # and the item has room again
    assert counted(MINUTE, release(decision.after, given), NOW + 30) == 0
    assert after_release(decision.after, given).counts == {MINUTE.bucket(NOW): 0}


def test_a_slot_that_no_longer_counts_is_not_given_back() -> None:
    # Given a slot taken at NOW / When the send fails once it no longer counts
    decision = take_slot(MINUTE, WindowCounts(KEY), NOW)
    assert isinstance(decision, SlotFree)
    frees = MINUTE.frees_at(decision.write.bucket)
    # Then there is nothing to give back (its sub-bucket may be gone)
    assert give_back(MINUTE, decision.write, frees) is None
    assert give_back(MINUTE, decision.write, frees - 1) is not None


def test_giving_back_to_a_sub_bucket_the_sender_does_not_know_changes_nothing() -> None:
    # Given a sender's view without that sub-bucket / When it gives back there / Then same
    state = WindowCounts(KEY, 4, {MINUTE.bucket(NOW): 2})
    assert after_release(state, SlotRelease(KEY, MINUTE.bucket(NOW) - 20)) == state


# -- a batch's slots, taken at once -----------------------------------------------------------


def _chain(window: Window, state: WindowCounts, sends: int) -> tuple[list[SlotWrite], int]:
    """The writes `sends` sends make one after another, and how many of them fit."""
    writes = []
    for _ in range(sends):
        decision = take_slot(window, state, NOW)
        if not isinstance(decision, SlotFree):
            break
        writes.append(decision.write)
        state = decision.after
    return writes, len(writes)


@pytest.mark.parametrize(
    "state",
    [
        WindowCounts("k"),  # no item yet: created with every send
        WindowCounts("k", 3, {MINUTE.bucket(NOW) - 20: 2}),  # an expired one: a new sub-bucket
        WindowCounts("k", 3, {MINUTE.bucket(NOW): 1}),  # now's sub-bucket: added to
    ],
)
def test_a_chain_of_writes_to_one_item_combines_into_one_with_every_send(
    state: WindowCounts,
) -> None:
    # Given the writes of as many sends as fit a window of ten a minute, one after another
    window = Window("minute", 60, 10)
    writes, fitted = _chain(window, state, 12)
    # When they are combined
    combined = combine_writes(writes)
    # Then the one write takes them all, under the first one's condition on the item
    assert combined.sends == fitted
    assert (combined.key, combined.bucket, combined.version) == (
        writes[0].key,
        writes[0].bucket,
        writes[0].version,
    )
    if writes[0].below is not None:
        # The room left for all of them: the item may hold at most what the first saw as room
        assert combined.below == writes[0].below - (fitted - 1)


def test_writes_that_are_not_one_chain_do_not_combine() -> None:
    first = take_slot(MINUTE, WindowCounts("a"), NOW)
    other = take_slot(MINUTE, WindowCounts("b"), NOW)
    assert isinstance(first, SlotFree)
    assert isinstance(other, SlotFree)
    with pytest.raises(ValueError, match="only a chain"):
        combine_writes([first.write, other.write])


def test_only_windows_with_sub_buckets_of_seconds_charge_a_batch_ahead() -> None:
    assert may_charge_ahead([]) is True
    assert may_charge_ahead([MINUTE, Window("day", 86400, 5)]) is True
    assert may_charge_ahead([SECOND, MINUTE]) is False


def test_a_send_charged_ahead_counts_a_whole_window_from_the_latest_it_may_start() -> None:
    # Given a send decided at NOW that may start up to CHARGE_AHEAD_SECONDS later
    window = Window("minute", 60, 3)
    decision = take_slot(window, WindowCounts("k"), NOW, charge_at=NOW + CHARGE_AHEAD_SECONDS)
    assert isinstance(decision, SlotFree)
    # Then it is charged to that later moment's sub-bucket, and frees a window after it
    assert decision.write.bucket == window.bucket(NOW + CHARGE_AHEAD_SECONDS)
    assert window.frees_at(decision.write.bucket) >= NOW + CHARGE_AHEAD_SECONDS + 60
    # And what counts is still judged at NOW: a send of 59 s ago still fills the window
    recent = WindowCounts("k", 1, {window.bucket(NOW - 59): 3})
    assert isinstance(take_slot(window, recent, NOW, charge_at=NOW + 5), WindowFull)
