"""A stored message as GET /messages shows it (SPEC.md's MessageRecord)."""

from __future__ import annotations

from dataclasses import replace

from mailproxy.domain.priority import Priority
from mailproxy.domain.record import MessageEvent, MessageState, iso_utc
from mailproxy.domain.status import EventType, MessageStatus

CREATED = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00

PENDING = MessageState(
    tenant_id="acme",
    id="m1",
    status=MessageStatus.PENDING,
    priority=Priority.HIGH,
    ticket="secret-ticket",
    created_at=CREATED,
    updated_at=CREATED + 5,
    account_id="main",
)


def test_a_pending_record_leaves_nulls_and_internals_out() -> None:
    # Given a pending message without batch, deferral or outcome / When shown
    record = PENDING.to_api({"id": "m1", "subject": "Hi"})
    # Then only the fields that have a value, and nothing of the sender's bookkeeping
    assert record == {
        "pk": "acme/m1",
        "id": "m1",
        "tenant_id": "acme",
        "account_id": "main",
        "priority": 1,
        "created_at": "2023-11-14T22:13:20+00:00",
        "updated_at": "2023-11-14T22:13:25+00:00",
        "message": {"id": "m1", "subject": "Hi"},
        "status": "pending",
    }


def test_a_sent_record_has_sent_ts_as_whole_seconds() -> None:
    sent = replace(PENDING, status=MessageStatus.SENT, sent_ts=CREATED + 9.7)
    record = sent.to_api({})
    assert record["sent_ts"] == int(CREATED) + 9
    assert record["status"] == "sent"
    assert "error" not in record
    assert "error_ts" not in record


def test_error_is_shown_only_when_the_message_failed() -> None:
    # Given a message waiting for a retry, with the last error kept / When shown
    deferred = replace(
        PENDING,
        status=MessageStatus.DEFERRED,
        deferred_ts=CREATED + 60,
        error="Message refused: later (SMTP 451)",
    )
    record = deferred.to_api({})
    # Then it is not reported as failed: no error, but when the next attempt is due
    assert "error" not in record
    assert record["deferred_ts"] == int(CREATED) + 60
    assert record["status"] == "deferred"

    failed = replace(
        PENDING, status=MessageStatus.ERROR, error_ts=CREATED + 61, error="No such user (SMTP 550)"
    )
    record = failed.to_api({})
    assert record["error"] == "No such user (SMTP 550)"
    assert record["error_ts"] == int(CREATED) + 61


def test_a_finished_record_has_no_deferred_ts() -> None:
    finished = replace(PENDING, status=MessageStatus.SENT, sent_ts=CREATED, deferred_ts=CREATED)
    assert "deferred_ts" not in finished.to_api({})


def test_without_a_payload_the_message_is_empty() -> None:
    assert PENDING.to_api(None)["message"] == {}


def test_history_only_when_asked_for() -> None:
    assert "history" not in PENDING.to_api({})
    assert PENDING.to_api({}, history=[])["history"] == []


def test_events_leave_nulls_out() -> None:
    # Given an unreported sent event without metadata and a deferred one with metadata
    sent = MessageEvent("e1", "m1", EventType.SENT, CREATED + 0.9)
    deferred = MessageEvent(
        "e2",
        "m1",
        EventType.DEFERRED,
        CREATED,
        description="later (SMTP 451)",
        metadata={"retry": 1},
        reported_ts=CREATED + 3,
    )
    record = PENDING.to_api({}, history=[deferred, sent])
    assert record["history"] == [
        {
            "event_id": "e2",
            "event_type": "deferred",
            "event_ts": int(CREATED),
            "description": "later (SMTP 451)",
            "metadata": {"retry": 1},
            "reported_ts": int(CREATED) + 3,
        },
        {"event_id": "e1", "event_type": "sent", "event_ts": int(CREATED)},
    ]


def test_iso_utc() -> None:
    assert iso_utc(None) is None
    assert iso_utc(0) == "1970-01-01T00:00:00+00:00"
