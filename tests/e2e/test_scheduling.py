"""Time in local mode: scheduled sends leave at their time, cancelled ones never, a sender
that dies mid-send is replaced, and suspended batches wait for activation. The clock is
moved forward through local mode's own routes; nothing waits for real hours."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.local_mode import LocalMode, local_mode_running
from tests.support.smtp_servers import SmtpServer


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    with local_mode_running() as local:
        yield local


@pytest.fixture
def smtp(local: LocalMode) -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        account = {"id": "main", "tenant_id": "shop", "host": "127.0.0.1", "port": server.port}
        assert local.call("POST", "/account", account) == (200, {"ok": True})
        yield server


def now(local: LocalMode) -> float:
    return float(local.call("GET", "/local/clock")[1]["now"])


def submit(local: LocalMode, *messages: dict[str, Any]) -> None:
    status, body = local.call("POST", "/commands/add-messages", {"messages": list(messages)})
    assert status == 200, body


def message(id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": id,
        "tenant_id": "shop",
        "account_id": "main",
        "from": "shop@example.test",
        "to": ["customer@example.test"],
        "subject": id,
        "body": "hello",
    } | extra


def record(local: LocalMode, id: str) -> dict[str, Any]:
    records = local.call("GET", "/messages?tenant_id=shop&include_history=true")[1]["messages"]
    return next(r for r in records if r["id"] == id)


def arrived(server: SmtpServer, id: str) -> int:
    return sum(1 for mail in server.received if mail.message["X-Genro-Mail-ID"] == id)


def test_a_message_scheduled_two_hours_ahead_leaves_at_its_time(
    local: LocalMode, smtp: SmtpServer
) -> None:
    # Given a message due in two hours
    due = now(local) + 7200
    submit(local, message("later", deferred_ts=due))
    assert record(local, "later")["status"] == "scheduled"
    # When an hour and a half passes (and the minute ticks run) / Then it has not left
    local.call("POST", "/local/clock/advance/5400")
    time.sleep(1)
    assert arrived(smtp, "later") == 0
    # When the clock reaches a few seconds before its time / Then it leaves, once, then
    local.call("POST", f"/local/clock/advance/{due - now(local) - 3}")
    local.wait_until(lambda: arrived(smtp, "later") == 1, timeout=30, what="the scheduled send")
    sent = record(local, "later")
    assert sent["status"] == "sent"
    assert sent["sent_ts"] >= int(due)


def test_a_scheduled_message_deleted_before_its_time_never_leaves(
    local: LocalMode, smtp: SmtpServer
) -> None:
    submit(local, message("cancelled", deferred_ts=now(local) + 3600))
    status, body = local.call(
        "POST", "/commands/delete-messages?tenant_id=shop", {"ids": ["cancelled"]}
    )
    assert (status, body["removed"]) == (200, 1)
    local.call("POST", "/local/clock/advance/3700")
    time.sleep(3)
    assert arrived(smtp, "cancelled") == 0


def test_a_sender_killed_after_its_claim_is_replaced(local: LocalMode, smtp: SmtpServer) -> None:
    # Given a sender that will die after claiming the next message, before its outcome
    assert local.call("POST", "/local/faults/crash-next-send")[0] == 200
    submit(local, message("orphan"))
    local.wait_until(
        lambda: record(local, "orphan")["status"] == "sending", timeout=30, what="the claim"
    )
    assert arrived(smtp, "orphan") == 0
    # When its lease runs out (the minute tick then looks at it)
    local.call("POST", "/local/clock/advance/400")
    # Then another sender takes it over and delivers it, once, saying it may be a repeat
    local.wait_until(lambda: arrived(smtp, "orphan") == 1, timeout=30, what="the recovery")
    local.wait_until(lambda: record(local, "orphan")["status"] == "sent", timeout=30, what="sent")
    history = [event["event_type"] for event in record(local, "orphan")["history"]]
    assert history == ["ambiguous", "sent"]
    time.sleep(1)
    assert arrived(smtp, "orphan") == 1


def test_a_suspended_batch_is_held_until_it_is_activated(
    local: LocalMode, smtp: SmtpServer
) -> None:
    # Given tenant shop with its batch "promo" suspended
    local.call("POST", "/tenant", {"id": "shop", "name": "Shop"})
    answer = local.call("POST", "/commands/suspend?tenant_id=shop&batch_code=promo")[1]
    assert answer["suspended_batches"] == ["promo"]
    # When messages of that batch and of another are sent
    submit(local, message("promo-1", batch_code="promo"), message("order-1", batch_code="orders"))
    # Then the other batch goes, and the suspended one waits
    local.wait_until(lambda: arrived(smtp, "order-1") == 1, timeout=30, what="order-1")
    time.sleep(2)
    assert arrived(smtp, "promo-1") == 0
    assert record(local, "promo-1")["status"] in ("pending", "scheduled")
    # When the batch is activated / Then what it held leaves at once
    answer = local.call("POST", "/commands/activate?tenant_id=shop&batch_code=promo")[1]
    assert answer["suspended_batches"] == []
    local.wait_until(lambda: arrived(smtp, "promo-1") == 1, timeout=30, what="the release")
