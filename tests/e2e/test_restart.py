"""Local mode stopped and started again keeps what it had: tenants, accounts, queued and
scheduled mail, finished mail with its history, the admin token; and a state folder it
cannot read stops it with one line saying what to do, the folder left as it was."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_mode import (
    ROOT,
    LocalMode,
    local_mode_env,
    start_local_mode,
    stop_local_mode,
)
from tests.support.smtp_servers import SmtpServer, free_port

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]


def start(state: Path) -> LocalMode:
    # No MAILPROXY_ADMIN_TOKEN: the token is the one local mode keeps in its state folder.
    local = start_local_mode(
        {"MAILPROXY_SINK_PORT": "0", "MAILPROXY_STATE_DIR": str(state), "MAILPROXY_ADMIN_TOKEN": ""}
    )
    local.token = (state / "admin-token").read_text().strip()
    return local


def stop(local: LocalMode) -> str:
    code, output = stop_local_mode(local)
    assert code == 0, output
    return output


def mail(id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "tenant_id": "shop",
        "account_id": "smtp-1",
        "from": "Shop <noreply@shop.test>",
        "to": f"{id}@example.test",
        "subject": f"Mail {id}",
        "body": f"This is {id}",
    } | fields


def records(local: LocalMode) -> dict[str, dict[str, Any]]:
    status, body = local.call("GET", "/messages?tenant_id=shop&include_history=true")
    assert status == 200, body
    return {record["id"]: record for record in body["messages"]}


def delivered(server: SmtpServer) -> collections.Counter[str]:
    return collections.Counter(m.message["X-Genro-Mail-ID"] for m in server.received)


def test_a_restart_keeps_tenants_accounts_queued_scheduled_and_finished_mail(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with SmtpServer(credentials=("mailer", "s3cret")) as server:
        # Given a tenant, an account whose password is sealed with the local KMS key,
        # and three messages already sent
        local = start(state)
        try:
            token = local.token
            status, body = local.call("POST", "/tenant", {"id": "shop", "name": "Shop"})
            assert status == 200, body
            tenant_key = body["api_key"]
            account = {
                "id": "smtp-1",
                "tenant_id": "shop",
                "host": "127.0.0.1",
                "port": server.port,
                "user": "mailer",
                "password": "s3cret",
                "use_tls": False,
            }
            assert local.call("POST", "/account", account) == (200, {"ok": True})
            done = [mail(f"done-{n}") for n in range(3)]
            assert local.call("POST", "/commands/add-messages", {"messages": done})[0] == 200
            local.wait_until(
                lambda: all(r["status"] == "sent" for r in records(local).values()),
                what="the first three messages sent",
            )

            # And, with the tenant's sending suspended, five messages waiting, one due in a
            # few seconds (held back on its SQS queue) and two scheduled two hours ahead
            status, body = local.call("POST", "/commands/suspend?tenant_id=shop")
            assert status == 200, body
            now = time.time()
            waiting = [mail(f"held-{n}") for n in range(5)]
            soon = [mail("soon-1", deferred_ts=now + 15)]
            later = [mail(f"later-{n}", deferred_ts=now + 7200) for n in range(2)]
            status, body = local.call(
                "POST", "/commands/add-messages", {"messages": waiting + soon + later}
            )
            assert (status, body["queued"]) == (200, 8), body
            before = records(local)
        finally:
            stop(local)
        assert sorted(delivered(server)) == ["done-0", "done-1", "done-2"]

        # When local mode starts again on the same folder
        local = start(state)
        try:
            # Then the same admin token works, and so does the tenant's key
            assert local.token == token
            status, body = local.call("GET", "/tenants")
            assert status == 200, body
            assert [t["id"] for t in body["tenants"]] == ["shop"]
            status, body = local.call("GET", "/accounts", token=tenant_key)
            assert status == 200, body
            assert [a["id"] for a in body["accounts"]] == ["smtp-1"]

            # And every message is there, the sent ones with their history
            after = records(local)
            assert sorted(after) == sorted(before)
            for n in range(3):
                kept = after[f"done-{n}"]
                assert kept["status"] == "sent"
                assert kept["history"] == before[f"done-{n}"]["history"]
                assert [e["event_type"] for e in kept["history"]] == ["sent"]
            assert {after[f"later-{n}"]["status"] for n in range(2)} == {"scheduled"}

            # When sending is activated, every waiting message leaves exactly once,
            # through the account's restored password
            status, body = local.call("POST", "/commands/activate?tenant_id=shop")
            assert status == 200, body
            expected = {"done-0", "done-1", "done-2", "soon-1"} | {f"held-{n}" for n in range(5)}
            local.wait_until(
                lambda: set(delivered(server)) == expected, timeout=90, what="the waiting mail"
            )
            # And the scheduled ones stay scheduled until their time comes
            assert {records(local)[f"later-{n}"]["status"] for n in range(2)} == {"scheduled"}
            status, body = local.call("POST", "/local/clock/advance/7200")
            assert status == 200, body
            expected |= {"later-0", "later-1"}
            local.wait_until(
                lambda: set(delivered(server)) == expected, timeout=60, what="the scheduled mail"
            )
            local.wait_until(
                lambda: all(r["status"] == "sent" for r in records(local).values()),
                what="every message marked sent",
            )
        finally:
            output = stop(local)
        assert f"  state        {state} (kept across restarts)" in output
        # soon-1 at least was still held back on its queue: SQS messages were restored too
        restored = re.search(r"state restored from .*?: \d+ items, (\d+) queued messages", output)
        assert restored is not None, output
        assert int(restored.group(1)) >= 1, output
        assert token in output

        # And a third start sends nothing again, and its clock is still two hours ahead
        local = start(state)
        try:
            status, body = local.call("GET", "/local/clock")
            assert body["offset_seconds"] == 7200, body
            assert local.call("POST", "/local/tick")[0] == 200
            time.sleep(3)
            assert all(r["status"] == "sent" for r in records(local).values())
        finally:
            stop(local)
        counts = delivered(server)
        assert set(counts) == expected
        assert set(counts.values()) == {1}, counts


def test_a_damaged_state_stops_local_mode_with_one_line_and_is_left_as_it_is(
    tmp_path: Path,
) -> None:
    # Given a state folder written by local mode, whose state file was then cut short
    state = tmp_path / "state"
    local = start(state)
    try:
        assert local.call("POST", "/tenant", {"id": "shop", "name": "Shop"})[0] == 200
    finally:
        stop(local)
    file = state / "state"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    (state / "admin-token").unlink()  # a start that went ahead would write a new one
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in state.iterdir()}

    # When local mode starts on it
    env = local_mode_env(
        {
            "MAILPROXY_PORT": str(free_port()),
            "MAILPROXY_SINK_PORT": "0",
            "MAILPROXY_STATE_DIR": str(state),
            "MAILPROXY_ADMIN_TOKEN": "",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "infra.local"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then it stops with code 2 and one line that says what to do
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mailproxy: the state in {state} is damaged"), lines[0]
    assert lines[0].endswith("move it away or delete it to start empty")
    assert "mailproxy local mode is running" not in result.stdout
    # And the folder is as it was
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in state.iterdir()} == before
