"""Delivery reports, the decisions: report lines, when a sync is due, backoff, the answer."""

from __future__ import annotations

import math

import pytest

from mailproxy.domain.record import MessageEvent
from mailproxy.domain.reporting import (
    SYNC_INTERVAL_SECONDS,
    SyncAnswer,
    SyncState,
    backoff_seconds,
    is_final,
    read_answer,
    report_entry,
    sync_due,
    sync_url,
)
from mailproxy.domain.status import EventType

NOW = 1_700_000_000.0


def event(event_type: EventType, **fields: object) -> MessageEvent:
    base: dict[str, object] = {
        "event_id": f"{int(NOW * 1000):013d}#m1#1#{event_type.value}",
        "message_id": "m1",
        "event_type": event_type,
        "event_ts": NOW + 0.75,
    }
    return MessageEvent(**(base | fields))  # type: ignore[arg-type]


# -- report lines ---------------------------------------------------------------------------


def test_a_sent_event_becomes_id_and_sent_ts() -> None:
    assert report_entry(event(EventType.SENT)) == {"id": "m1", "sent_ts": int(NOW)}


def test_an_error_event_carries_its_time_and_reason() -> None:
    line = report_entry(event(EventType.ERROR, description="No such user (SMTP 550)"))
    assert line == {"id": "m1", "error_ts": int(NOW), "error": "No such user (SMTP 550)"}


def test_a_deferred_event_says_until_when_and_why() -> None:
    # Given a deferral whose metadata holds the due time and reason (a float from a rate limit)
    deferred = event(
        EventType.DEFERRED,
        description="Greylisted (SMTP 451)",
        metadata={"deferred_ts": NOW + 60.5, "deferred_reason": "Greylisted (SMTP 451)"},
    )
    # Then the line has the contract's fields, in whole seconds
    assert report_entry(deferred) == {
        "id": "m1",
        "deferred_ts": int(NOW + 60),
        "deferred_reason": "Greylisted (SMTP 451)",
    }


def test_a_deferred_event_without_metadata_falls_back_on_its_own_fields() -> None:
    line = report_entry(event(EventType.DEFERRED, description="later"))
    assert line == {"id": "m1", "deferred_ts": int(NOW), "deferred_reason": "later"}


def test_an_ambiguous_event_has_no_line_in_the_contract() -> None:
    assert report_entry(event(EventType.AMBIGUOUS, description="connection lost")) is None


def test_only_sent_and_error_end_a_message() -> None:
    assert [t for t in EventType if is_final(event(t))] == [EventType.SENT, EventType.ERROR]


# -- when a sync is due ---------------------------------------------------------------------


def state(**fields: object) -> SyncState:
    return SyncState(**({"tenant_id": "acme"} | fields))  # type: ignore[arg-type]


def test_a_tenant_never_synced_is_due_at_once() -> None:
    assert sync_due(state(), has_events=False, now=NOW, force=False)


def test_the_heartbeat_comes_every_sync_interval() -> None:
    synced = state(last_sync_ts=NOW)
    assert SYNC_INTERVAL_SECONDS == 300
    assert not sync_due(synced, False, NOW + 299, False)
    assert sync_due(synced, False, NOW + 300, False)


def test_events_are_due_at_once() -> None:
    assert sync_due(state(last_sync_ts=NOW), has_events=True, now=NOW + 1, force=False)


def test_do_not_disturb_holds_the_heartbeat_but_not_events() -> None:
    # Given a client that asked for quiet for an hour
    quiet = state(last_sync_ts=NOW, next_sync_after=NOW + 3600)
    # Then no heartbeat until then, though the interval has passed
    assert not sync_due(quiet, False, NOW + 600, False)
    assert sync_due(quiet, False, NOW + 3600, False)
    # but events are reported at once
    assert sync_due(quiet, True, NOW + 1, False)


def test_backoff_holds_events_and_heartbeat() -> None:
    failing = state(last_sync_ts=NOW - 3600, sync_failures=2, sync_retry_after=NOW + 120)
    assert not sync_due(failing, True, NOW, False)
    assert not sync_due(failing, False, NOW, False)
    assert sync_due(failing, True, NOW + 120, False)


def test_force_goes_through_do_not_disturb_and_backoff() -> None:
    held = state(last_sync_ts=NOW, next_sync_after=NOW + 3600, sync_retry_after=NOW + 60)
    assert sync_due(held, has_events=False, now=NOW + 1, force=True)


def test_an_inactive_tenant_is_never_called() -> None:
    inactive = state(active=False)
    assert not sync_due(inactive, True, NOW, False)
    assert not sync_due(inactive, False, NOW, True)


# -- backoff --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0), (1, 60), (2, 120), (3, 240), (4, 480), (6, 1920), (7, 3600), (500, 3600)],
)
def test_backoff_doubles_up_to_an_hour(failures: int, seconds: int) -> None:
    assert backoff_seconds(failures) == seconds


# -- the client's answer --------------------------------------------------------------------


def test_the_answer_asks_for_another_call_or_for_quiet() -> None:
    assert read_answer({"ok": True, "queued": 3}) == SyncAnswer(queued=3)
    assert read_answer({"ok": True, "next_sync_after": NOW}) == SyncAnswer(next_sync_after=NOW)
    assert read_answer({"ok": True}) == SyncAnswer()


@pytest.mark.parametrize(
    "body",
    [
        None,
        "ok",
        [1, 2],
        {"queued": "3"},
        {"queued": True},
        {"queued": 1.5},
        {"next_sync_after": "tomorrow"},
        {"next_sync_after": math.inf},
        {"next_sync_after": False},
    ],
)
def test_a_field_of_the_wrong_type_counts_as_absent(body: object) -> None:
    assert read_answer(body) == SyncAnswer()


def test_the_sync_url_joins_base_and_path_with_one_slash() -> None:
    assert sync_url("https://app.test/", "/mail-proxy/sync") == "https://app.test/mail-proxy/sync"
    assert sync_url("https://app.test/base", "hooks/sync") == "https://app.test/base/hooks/sync"
