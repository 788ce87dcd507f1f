"""Rate-limit windows: aligned to the epoch, one counter per window start, and the decision
over a full window (defer to its end, or reject)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mailproxy.domain.account import Account
from mailproxy.domain.rate_limit import (
    COUNTER_TTL_MARGIN_SECONDS,
    RATE_LIMIT_EXCEEDED,
    DeferUntil,
    RejectOverLimit,
    Window,
    over_limit,
    windows_for,
)

# 2023-11-14 22:13:20.250 UTC: not on any window boundary.
NOW = 1_700_000_000.25

SECOND = Window("second", 1, 10)
MINUTE = Window("minute", 60, 3)
HOUR = Window("hour", 3600, 100)
DAY = Window("day", 86400, 1000)


def account(**limits: Any) -> Account:
    return Account(id="main", tenant_id="acme", host="smtp.acme.test", port=25, **limits)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


# -- alignment ------------------------------------------------------------------------------


def test_a_second_window_starts_on_the_whole_second() -> None:
    # Given a time with a fraction / When its second window is taken / Then it is the second
    assert SECOND.start(NOW) == 1_700_000_000
    assert SECOND.end(NOW) == 1_700_000_001


def test_a_minute_window_starts_on_00_seconds() -> None:
    # Given 22:13:20.25 / When the minute window is taken / Then it runs 22:13:00 → 22:14:00
    start, end = MINUTE.start(NOW), MINUTE.end(NOW)
    assert utc(start) == datetime(2023, 11, 14, 22, 13, 0, tzinfo=UTC)
    assert utc(end) == datetime(2023, 11, 14, 22, 14, 0, tzinfo=UTC)
    assert start % 60 == 0
    assert end - start == 60


def test_an_hour_window_starts_on_the_hour() -> None:
    assert utc(HOUR.start(NOW)) == datetime(2023, 11, 14, 22, 0, 0, tzinfo=UTC)
    assert utc(HOUR.end(NOW)) == datetime(2023, 11, 14, 23, 0, 0, tzinfo=UTC)


def test_a_day_window_starts_on_utc_midnight() -> None:
    # Given a late evening time (UTC) / When the day window is taken / Then it is that UTC day
    assert utc(DAY.start(NOW)) == datetime(2023, 11, 14, tzinfo=UTC)
    assert utc(DAY.end(NOW)) == datetime(2023, 11, 15, tzinfo=UTC)


@pytest.mark.parametrize("window", [SECOND, MINUTE, HOUR, DAY], ids=lambda w: w.name)
def test_a_boundary_instant_opens_a_new_window(window: Window) -> None:
    # Given the exact end of a window / When taken / Then it is the start of the next one
    boundary = window.end(NOW)
    assert window.start(boundary) == boundary
    assert window.start(boundary - 0.001) == window.start(NOW)
    assert window.end(boundary) == boundary + window.seconds


def test_times_in_one_window_share_its_start() -> None:
    start = MINUTE.start(NOW)
    assert {MINUTE.start(start + offset) for offset in (0, 0.5, 30, 59.999)} == {start}


# -- counter keys -----------------------------------------------------------------------------


def test_the_counter_key_names_tenant_account_window_and_start() -> None:
    assert MINUTE.counter_key("acme", "main", NOW) == "acme#main#minute#1699999980"


def test_counter_keys_differ_per_window_start() -> None:
    # Given two instants in consecutive minutes / When keyed / Then two counters
    this_minute = MINUTE.counter_key("acme", "main", NOW)
    next_minute = MINUTE.counter_key("acme", "main", MINUTE.end(NOW))
    same_minute = MINUTE.counter_key("acme", "main", MINUTE.end(NOW) - 0.001)
    assert this_minute != next_minute
    assert this_minute == same_minute


def test_counter_keys_differ_per_window_tenant_and_account() -> None:
    keys = {
        MINUTE.counter_key("acme", "main", NOW),
        HOUR.counter_key("acme", "main", NOW),
        MINUTE.counter_key("other", "main", NOW),
        MINUTE.counter_key("acme", "backup", NOW),
    }
    assert len(keys) == 4


def test_a_counter_expires_a_margin_after_its_window() -> None:
    assert MINUTE.expires_at(NOW) == MINUTE.end(NOW) + COUNTER_TTL_MARGIN_SECONDS


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


# -- over_limit -------------------------------------------------------------------------------


def test_defer_waits_for_the_end_of_the_full_window() -> None:
    # Given a deferring account whose minute is full / When decided / Then wait to 22:14:00
    decision = over_limit(account(limit_per_minute=3), [MINUTE], NOW)
    assert decision == DeferUntil(MINUTE.end(NOW), f"{RATE_LIMIT_EXCEEDED}: limit_per_minute 3")


def test_defer_waits_for_the_latest_of_several_full_windows() -> None:
    # Given the minute and the hour both full / When decided / Then wait to the hour's end,
    # and the reason names the hour (the window that is waited for)
    decision = over_limit(account(limit_per_minute=3), [MINUTE, HOUR], NOW)
    assert isinstance(decision, DeferUntil)
    assert decision.due_ts == HOUR.end(NOW)
    assert decision.reason == "rate_limit_exceeded: limit_per_hour 100"


def test_defer_is_independent_of_the_order_of_full_windows() -> None:
    decision = over_limit(account(), [DAY, SECOND, MINUTE], NOW)
    assert decision == DeferUntil(DAY.end(NOW), "rate_limit_exceeded: limit_per_day 1000")


def test_the_deferral_is_an_integer_epoch_time() -> None:
    decision = over_limit(account(), [SECOND], NOW)
    assert isinstance(decision, DeferUntil)
    assert decision.due_ts == 1_700_000_001
    assert isinstance(decision.due_ts, int)


def test_reject_fails_with_rate_limit_exceeded() -> None:
    # Given a rejecting account over its minute / When decided / Then rate_limit_exceeded
    decision = over_limit(account(limit_per_minute=3, limit_behavior="reject"), [MINUTE], NOW)
    assert decision == RejectOverLimit()
    assert isinstance(decision, RejectOverLimit)
    assert decision.reason == "rate_limit_exceeded"
    assert RATE_LIMIT_EXCEEDED == "rate_limit_exceeded"
