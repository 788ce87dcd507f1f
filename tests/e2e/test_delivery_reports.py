"""Delivery reports as a client application meets them, through local mode: its sync
endpoint hears of every outcome, in order, once, even when it fails for a while."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.local_mode import LocalMode, local_mode_running
from tests.support.reporting import SyncEndpoint, answer
from tests.support.smtp_servers import RecordingHandler, SmtpServer


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    with local_mode_running() as local:
        yield local


def message(id: str, account: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": id,
        "tenant_id": "app",
        "account_id": account,
        "from": "app@example.test",
        "to": ["customer@example.test"],
        "subject": id,
        "body": "hello",
    } | extra


def test_reports_arrive_in_order_once_and_survive_a_failing_client(local: LocalMode) -> None:
    refusing = RecordingHandler(data_reply="550 5.7.1 Rejected as spam")
    greylisting = RecordingHandler(data_reply="451 4.7.1 Try again later")
    # Given a client whose sync endpoint fails once (500), then answers 200
    with (
        SyncEndpoint([answer({"error": "busy"}, 500)]) as client,
        SmtpServer() as good,
        SmtpServer(refusing) as bad,
        SmtpServer(greylisting) as later,
    ):
        tenant = {
            "id": "app",
            "client_base_url": client.base_url(),
            "client_auth": {"method": "bearer", "token": "client-secret"},
        }
        assert local.call("POST", "/tenant", tenant)[0] == 200
        for name, server in (("good", good), ("bad", bad), ("later", later)):
            account = {"id": name, "tenant_id": "app", "host": "127.0.0.1", "port": server.port}
            assert local.call("POST", "/account", account)[0] == 200
        # When a message is sent, one refused and one greylisted, one after the other
        for id, account in (("m-sent", "good"), ("m-error", "bad"), ("m-deferred", "later")):
            assert (
                local.call("POST", "/commands/add-messages", {"messages": [message(id, account)]})[
                    0
                ]
                == 200
            )
            local.wait_until(
                lambda id=id: _status(local, id) in ("sent", "error", "deferred"),
                timeout=30,
                what=id,
            )
        # Then the client is called (its first answer a 500), and after the back-off
        local.wait_until(lambda: len(client.calls()) >= 1, timeout=30, what="a first sync")
        local.call("POST", "/local/clock/advance/120")
        local.wait_until(
            lambda: {"m-sent", "m-error", "m-deferred"} <= set(_ok_reported(client)),
            timeout=30,
            what="the reports after the client recovered",
        )
        # every outcome was reported with the contract's fields, in event order, with auth
        lines = [line for report in client.reports()[1:] for line in report]
        by_id = {line["id"]: line for line in lines}
        assert set(by_id["m-sent"]) == {"id", "sent_ts"}
        assert by_id["m-error"]["error"].endswith("(SMTP 550)")
        assert set(by_id["m-deferred"]) == {"id", "deferred_ts", "deferred_reason"}
        assert [line["id"] for line in lines] == ["m-sent", "m-error", "m-deferred"]
        assert all(
            call.headers.get("Authorization") == "Bearer client-secret" for call in client.calls()
        )
        # and nothing is reported twice after the 2xx, however often the minute ticks
        local.call("POST", "/local/tick")
        local.call("POST", "/local/tick")
        time.sleep(1)
        assert sorted(_ok_reported(client)) == ["m-deferred", "m-error", "m-sent"]


def _status(local: LocalMode, id: str) -> str | None:
    records = local.call("GET", "/messages?tenant_id=app")[1]["messages"]
    return next((r["status"] for r in records if r["id"] == id), None)


def _ok_reported(client: SyncEndpoint) -> list[str]:
    """Ids in the calls the client answered with a 2xx (all but its scripted first 500)."""
    return [line["id"] for report in client.reports()[1:] for line in report]
