"""Bounces as an operator and a client application meet them, through local mode: instance
settings over HTTP, a real IMAP mailbox (pymap) holding a real DSN, the bounce in the
message's history and in the delivery report, once, and the command log of it all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.imap_server import PASSWORD, USER, ImapServer
from tests.support.local_mode import LocalMode, local_mode_running
from tests.support.reporting import SyncEndpoint
from tests.support.smtp_servers import RecordingHandler, SmtpServer

BOUNCES = Path(__file__).parents[1] / "fixtures" / "bounces"
RETURN_PATH = "bounces@mailproxy.example"


@pytest.fixture
def imap(tmp_path: Path) -> Iterator[ImapServer]:
    server = ImapServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def local(imap: ImapServer, tmp_path: Path) -> Iterator[LocalMode]:
    ca = tmp_path / "imap-ca.pem"
    ca.write_bytes(imap.ca.cert_pem.bytes())
    # The bouncer verifies the mailbox's certificate against the default CAs: here, its CA.
    with local_mode_running({"SSL_CERT_FILE": str(ca)}) as local:
        yield local


def _history(local: LocalMode, message_id: str) -> list[dict[str, Any]]:
    _, body = local.call("GET", "/messages?tenant_id=acme&include_history=true")
    [record] = [m for m in body["messages"] if m["id"] == message_id]
    return record.get("history", [])


def _bounces(local: LocalMode, message_id: str) -> list[dict[str, Any]]:
    return [e for e in _history(local, message_id) if e["event_type"] == "bounce"]


def test_a_hard_bounce_reaches_the_history_and_the_client_once(
    local: LocalMode, imap: ImapServer
) -> None:
    recording = RecordingHandler()
    with SmtpServer(recording) as smtp, SyncEndpoint() as client:
        # Given a tenant with a sync endpoint, an account, and the bounce mailbox set up
        tenant = {"id": "acme", "client_base_url": client.base_url()}
        assert local.call("POST", "/tenant", tenant)[0] == 200
        account = {"id": "main", "tenant_id": "acme", "host": "127.0.0.1", "port": smtp.port}
        assert local.call("POST", "/account", account)[0] == 200
        settings = {
            "bounce_enabled": True,
            "bounce_imap_host": "127.0.0.1",
            "bounce_imap_port": imap.tls_port,
            "bounce_imap_user": USER,
            "bounce_imap_password": PASSWORD,
            "bounce_return_path": RETURN_PATH,
        }
        assert local.call("PUT", "/instance", settings) == (200, {"ok": True})
        # Then GET /instance shows the settings, never the password
        status, shown = local.call("GET", "/instance")
        assert status == 200
        assert shown["bounce_enabled"] is True
        assert shown["bounce_imap_user"] == USER
        assert "bounce_imap_password" not in shown
        assert PASSWORD not in str(shown)

        # When a message is sent, with the return path as its envelope sender
        sent = {
            "id": "msg-hard-1",
            "tenant_id": "acme",
            "account_id": "main",
            "from": "billing@acme.example",
            "to": ["nobody@customer.example"],
            "subject": "Your invoice 2026-118",
            "body": "Attached.",
            "message_id": "<9d1c27a0b4e54f7c8a1e2b3c4d5e6f70@acme.example>",
        }
        assert local.call("POST", "/commands/add-messages", {"messages": [sent]})[0] == 200
        local.wait_until(lambda: recording.received, timeout=30, what="the mail at the server")
        assert recording.received[0].mail_from == RETURN_PATH
        # And the recipient's server bounces it later: a DSN lands in the bounce mailbox
        dsn = (BOUNCES / "postfix_hard_511.eml").read_bytes()
        imap.append("INBOX", dsn)
        assert local.call("POST", "/instance/reload-bounce") == (200, {"ok": True})
        # Then the message's history holds one hard bounce with its code and reason
        [bounce] = local.wait_until(
            lambda: _bounces(local, "msg-hard-1") or None, timeout=30, what="the bounce event"
        )
        assert bounce["metadata"]["bounce_type"] == "hard"
        assert bounce["metadata"]["bounce_code"] == "5.1.1"
        # And the client hears of it in a delivery report
        local.call("POST", "/commands/run-now?tenant_id=acme")
        lines = local.wait_until(
            lambda: (
                [line for report in client.reports() for line in report if "bounce_ts" in line]
                or None
            ),
            timeout=30,
            what="the bounce in a delivery report",
        )
        assert lines[0]["id"] == "msg-hard-1"
        assert (lines[0]["bounce_type"], lines[0]["bounce_code"]) == ("hard", "5.1.1")
        assert lines[0]["bounce_reason"]

        # When the same DSN is delivered to the mailbox a second time
        imap.append("INBOX", dsn)
        assert local.call("POST", "/instance/reload-bounce")[0] == 200
        local.wait_until(lambda: not imap.uids("INBOX"), timeout=30, what="the mailbox read")
        # Then it is not counted twice
        assert len(_bounces(local, "msg-hard-1")) == 1

    # And the command log holds the settings' change, its password masked
    _, log = local.call("GET", "/command-log?endpoint_filter=instance")
    put = [c for c in log["commands"] if c["endpoint"] == "PUT /instance"]
    assert put[0]["payload"]["bounce_imap_password"] == "***"
    assert PASSWORD not in str(log)
