"""A stored message as GET /messages shows it (SPEC.md's MessageRecord), as it is serialized."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mailproxy.api.responses import iso_utc, message_record
from mailproxy.domain.priority import Priority
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.status import EventType, MessageStatus


def shown(
    state: MessageState,
    payload: dict[str, Any] | None,
    history: list[MessageEvent] | None = None,
) -> dict[str, Any]:
    return message_record(state, payload, history).model_dump(mode="json")


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
    record = shown(PENDING, {"id": "m1", "subject": "Hi"})
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
    record = shown(sent, {})
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
    record = shown(deferred, {})
    # Then it is not reported as failed: no error, but when the next attempt is due
    assert "error" not in record
    assert record["deferred_ts"] == int(CREATED) + 60
    assert record["status"] == "deferred"

    failed = replace(
        PENDING, status=MessageStatus.ERROR, error_ts=CREATED + 61, error="No such user (SMTP 550)"
    )
    record = shown(failed, {})
    assert record["error"] == "No such user (SMTP 550)"
    assert record["error_ts"] == int(CREATED) + 61


def test_a_finished_record_has_no_deferred_ts() -> None:
    finished = replace(PENDING, status=MessageStatus.SENT, sent_ts=CREATED, deferred_ts=CREATED)
    assert "deferred_ts" not in shown(finished, {})


def test_without_a_payload_the_message_is_empty() -> None:
    assert shown(PENDING, None)["message"] == {}


def test_history_only_when_asked_for() -> None:
    assert "history" not in shown(PENDING, {})
    assert shown(PENDING, {}, history=[])["history"] == []


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
    record = shown(PENDING, {}, history=[deferred, sent])
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


def test_a_tenant_leaves_nulls_out_at_every_level() -> None:
    # Given a tenant without name or URL, with a large file config without storage_url
    from mailproxy.api.responses import tenant_view
    from mailproxy.domain.large_files import LargeFileConfig
    from mailproxy.domain.tenant import StoredClientAuth, Tenant

    tenant = Tenant(
        id="acme",
        created_at=CREATED,
        updated_at=CREATED,
        client_auth=StoredClientAuth(method="bearer", user="", sealed_secret="sealed"),
        suspended_batches=frozenset({"b2", "b1"}),
        large_file_config=LargeFileConfig(enabled=True),
    )
    # When shown / Then only what has a value, and never the sealed secret
    assert tenant_view(tenant).model_dump(mode="json") == {
        "id": "acme",
        "client_sync_path": "/mail-proxy/sync",
        "client_attachment_path": "/mail-proxy/attachments",
        "client_auth": {"method": "bearer"},
        "active": True,
        "suspended_batches": ["b1", "b2"],
        "large_file_config": {
            "enabled": True,
            "max_size_mb": 10.0,
            "action": "warn",
            "file_ttl_days": 30,
        },
        "created_at": "2023-11-14T22:13:20+00:00",
        "updated_at": "2023-11-14T22:13:20+00:00",
    }


def test_an_account_is_shown_without_its_password_and_without_nulls() -> None:
    # Given an account with a password / When shown to a client / Then no password, no nulls
    from mailproxy.api.responses import account_view
    from mailproxy.domain.account import Account, StoredAccount

    account = Account(
        id="main", tenant_id="acme", host="smtp.test", port=587, user="u", password="s3cret"
    )
    view = account_view(StoredAccount(account, CREATED, CREATED + 5)).model_dump(mode="json")
    assert "password" not in view
    assert "s3cret" not in str(view)
    assert view["user"] == "u"
    assert "limit_per_minute" not in view
    assert (view["created_at"], view["updated_at"]) == (
        "2023-11-14T22:13:20+00:00",
        "2023-11-14T22:13:25+00:00",
    )
