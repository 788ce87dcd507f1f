"""A user's first minutes with local mode: start it, point an account at an SMTP server,
send mail over HTTP, see it arrive, stop it."""

from __future__ import annotations

import re

from tests.support.local_mode import LocalMode, start_local_mode, stop_local_mode
from tests.support.smtp_servers import SmtpServer, free_port

LABELS = ["immediate", "high", "medium", "low"]


def test_twenty_messages_of_mixed_priorities_arrive_and_show_as_sent(local_mode: LocalMode) -> None:
    # Given an account pointing at a real SMTP server
    with SmtpServer() as server:
        status, body = local_mode.call(
            "POST",
            "/account",
            {"id": "smtp-1", "tenant_id": "shop", "host": "127.0.0.1", "port": server.port},
        )
        assert (status, body) == (200, {"ok": True})

        # When 20 messages of every priority are posted in one request
        messages = [
            {
                "id": f"order-{n}",
                "tenant_id": "shop",
                "account_id": "smtp-1",
                "from": "Shop <noreply@shop.test>",
                "to": f"customer{n}@example.test",
                "cc": [f"cc{n}@example.test"],
                "bcc": f"audit{n}@example.test",
                "reply_to": "support@shop.test",
                "subject": f"Order {n} confirmed",
                "body": f"<p>Thanks for order {n}</p>" if n % 2 else f"Thanks for order {n}",
                "content_type": "html" if n % 2 else "plain",
                "headers": {"X-Order": str(n)},
                "priority": LABELS[n % 4] if n % 3 else n % 4,
            }
            for n in range(20)
        ]
        status, body = local_mode.call("POST", "/commands/add-messages", {"messages": messages})
        assert status == 200, body
        assert body == {"ok": True, "queued": 20, "rejected": []}

        # Then all 20 arrive, each with its recipients, headers and body
        received = server.handler.wait_for(20, timeout=60)
        assert len(received) == 20
        by_id = {mail.message["X-Genro-Mail-ID"]: mail for mail in received}
        assert sorted(by_id) == sorted(m["id"] for m in messages)
        for n in range(20):
            mail = by_id[f"order-{n}"]
            parsed = mail.message
            assert mail.mail_from == "noreply@shop.test"
            assert sorted(mail.recipients) == sorted(
                [f"customer{n}@example.test", f"cc{n}@example.test", f"audit{n}@example.test"]
            )
            assert parsed["Bcc"] is None
            assert f"audit{n}" not in mail.data.decode()
            assert parsed["To"] == f"customer{n}@example.test"
            assert parsed["Cc"] == f"cc{n}@example.test"
            assert parsed["Reply-To"] == "support@shop.test"
            assert parsed["Subject"] == f"Order {n} confirmed"
            assert parsed["X-Order"] == str(n)
            assert re.fullmatch(r"<[^@]+@shop\.test>", parsed["Message-ID"])
            content = parsed.get_body().get_content()
            assert f"order {n}" in content
            assert parsed.get_content_subtype() == ("html" if n % 2 else "plain")

        # And GET /messages shows every one of them sent
        def all_sent() -> list[dict] | None:
            _, listing = local_mode.call("GET", "/messages?tenant_id=shop")
            records = listing["messages"]
            done = len(records) == 20 and all(r["status"] == "sent" for r in records)
            return records if done else None

        records = local_mode.wait_until(all_sent, timeout=30, what="all messages sent")
        assert all("sent_ts" in record and "error" not in record for record in records)
        assert len(server.received) == 20  # and nothing twice


def test_the_readme_curl_lines_deliver_into_the_sink() -> None:
    # Given local mode with its SMTP sink, as `make run` starts it
    sink_port = free_port()
    local = start_local_mode({"MAILPROXY_SINK_PORT": str(sink_port)})
    try:
        # When the account and message of the start banner are posted
        account = {
            "id": "sink",
            "tenant_id": "demo",
            "host": "127.0.0.1",
            "port": sink_port,
            "use_tls": False,
        }
        assert local.call("POST", "/account", account)[0] == 200
        message = {
            "id": "hello-1",
            "tenant_id": "demo",
            "account_id": "sink",
            "from": "app@example.com",
            "to": ["you@example.com"],
            "subject": "Hello from mailproxy",
            "body": "It works.",
        }
        status, body = local.call("POST", "/commands/add-messages", {"messages": [message]})
        assert (status, body["queued"]) == (200, 1)

        # Then the sink lists it
        def in_sink() -> list[dict] | None:
            _, listing = local.call("GET", "/local/sink/messages")
            return listing["messages"] or None

        mails = local.wait_until(in_sink, timeout=30, what="the mail in the sink")
        assert mails[0]["subject"] == "Hello from mailproxy"
        assert mails[0]["recipients"] == ["you@example.com"]
        assert mails[0]["mail_id"] == "hello-1"
    finally:
        code, output = stop_local_mode(local)
    # And the banner told the user the URL, the token and a curl line; SIGTERM stopped it
    assert code == 0, output
    assert local.url in output
    assert local.token in output
    assert "curl" in output


def test_a_port_in_use_is_named_in_one_line() -> None:
    import socket
    import subprocess
    import sys

    from tests.support.local_mode import ROOT

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "infra.local"],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "MAILPROXY_PORT": str(busy), "MAILPROXY_SINK_PORT": "0"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {busy}" in result.stderr
    assert "MAILPROXY_PORT" in result.stderr


def test_the_minute_tick_wakes_the_bounce_reader(local_mode: LocalMode) -> None:
    # Given local mode with no instance settings / When its minute tick runs
    status, body = local_mode.call("POST", "/local/tick")
    # Then the bounce reader was called too, and found itself disabled
    assert status == 200
    assert body["ticked"]["mailproxy-bouncer"] == {"state": "disabled"}
