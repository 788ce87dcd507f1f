"""Local mode at a user's volume: thousands of messages through `python -m infra.local`, each
delivered exactly once, in bounded memory; finished mail leaves on the retention schedule."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from infra.local.console import read_emf
from tests.support.local_mode import LocalMode, start_local_mode, stop_local_mode
from tests.support.smtp_servers import SmtpServer

MAIL_ID = re.compile(rb"X-Genro-Mail-ID: (\S+)")
PEAK_RSS_BOUND_MIB = 400
RETENTION_SECONDS = 7 * 24 * 3600


def _peak_rss_mib(local: LocalMode) -> float:
    """Peak resident memory of local mode and of any process it started."""
    pids = [local.process.pid]
    children = Path(f"/proc/{local.process.pid}/task/{local.process.pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    total = 0.0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def _messages(first: int, count: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"vol-{n}",
            "tenant_id": "volume",
            "account_id": "smtp",
            "from": "app@volume.test",
            "to": [f"user{n}@example.test"],
            "subject": f"Message {n}",
            "body": f"Body {n}",
        }
        for n in range(first, first + count)
    ]


@pytest.mark.timeout(900)
def test_two_thousand_messages_are_each_delivered_once_in_bounded_memory(
    tmp_path: Path,
) -> None:
    with SmtpServer(greeting_delay=0.02) as server:
        local = start_local_mode(
            {"MAILPROXY_SINK_PORT": "0", "MAILPROXY_STATE_DIR": str(tmp_path / "state")}
        )
        try:
            # Given an account pointing at an SMTP server one WAN hop away
            status, _ = local.call(
                "POST",
                "/account",
                {"id": "smtp", "tenant_id": "volume", "host": "127.0.0.1", "port": server.port},
            )
            assert status == 200

            # When 2,000 messages are posted, 50 per call
            for first in range(0, 2000, 50):
                status, body = local.call(
                    "POST", "/commands/add-messages", {"messages": _messages(first, 50)}
                )
                assert (status, body["queued"]) == (200, 50), body

            # Then every one arrives, exactly once
            received = server.handler.wait_for(2000, timeout=840)
            ids = Counter(m.group(1).decode() for r in received if (m := MAIL_ID.search(r.data)))
            assert set(ids) == {f"vol-{n}" for n in range(2000)}
            assert [i for i, times in ids.items() if times > 1] == []

            # And each shows as sent (the server holds the last mail a moment before its 250
            # reaches the sender and the record is written), while local mode stayed within
            # its memory bound
            def settled_statuses() -> Counter[str] | None:
                _, listing = local.call("GET", "/messages?tenant_id=volume")
                found = Counter(record["status"] for record in listing["messages"])
                return None if found["sending"] else found

            settled = local.wait_until(settled_statuses, timeout=60, what="no message left sending")
            assert settled == {"sent": 2000}
            assert _peak_rss_mib(local) < PEAK_RSS_BOUND_MIB
        finally:
            code, output = stop_local_mode(local)
        assert code == 0, output[-3000:]


def test_finished_messages_leave_on_the_retention_schedule(tmp_path: Path) -> None:
    with SmtpServer() as server:
        local = start_local_mode(
            {"MAILPROXY_SINK_PORT": "0", "MAILPROXY_STATE_DIR": str(tmp_path / "state")}
        )
        try:
            # Given twenty messages sent for a tenant with no sync endpoint (nobody to tell)
            status, _ = local.call("POST", "/tenant", {"id": "volume", "name": "Volume"})
            assert status == 200
            local.call(
                "POST",
                "/account",
                {"id": "smtp", "tenant_id": "volume", "host": "127.0.0.1", "port": server.port},
            )
            local.call("POST", "/commands/add-messages", {"messages": _messages(0, 20)})
            server.handler.wait_for(20, timeout=60)

            def all_sent_and_reported() -> bool:
                _, listing = local.call("GET", "/messages?tenant_id=volume")
                records = listing["messages"]
                return len(records) == 20 and all(
                    r["status"] == "sent" and "reported_ts" in r for r in records
                )

            local.wait_until(all_sent_and_reported, timeout=60, what="twenty messages reported")

            # When the local clock moves past the retention period (a tick follows)
            status, _ = local.call("POST", f"/local/clock/advance/{RETENTION_SECONDS + 3600}")
            assert status == 200

            # Then they expired, as DynamoDB's TTL would have removed them
            def expired() -> bool:
                local.call("POST", "/local/tick")
                _, listing = local.call("GET", "/messages?tenant_id=volume")
                return listing["messages"] == []

            local.wait_until(expired, timeout=60, what="finished messages to expire")
        finally:
            code, output = stop_local_mode(local)
        assert code == 0, output[-3000:]

        # And the console told a person each outcome in a line, the metrics went to their file
        assert re.search(r"sent vol-7 to user7@example\.test via smtp in \d+ ms", output), output
        assert '"_aws"' not in output
        emf = read_emf(tmp_path / "state" / "metrics.emf.jsonl")
        assert sum(doc.get("sent", [0])[0] for doc in emf if doc.get("scope") == "all") == 20
