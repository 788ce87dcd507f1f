"""An operator's `mailproxy` command against local mode, run as a subprocess, and its
DLQ redrive against an in-process moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.local_mode import ROOT, LocalMode, start_local_mode, stop_local_mode
from tests.support.smtp_servers import free_port


def run_cli(
    local: LocalMode, *args: str, token: str | None = None, command: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "MAILPROXY_"))
    }
    # No AWS access at all, and no waiting on an instance metadata service for credentials.
    env |= {
        "MAILPROXY_URL": local.url,
        "MAILPROXY_TOKEN": token if token is not None else local.token,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    return subprocess.run(
        [*(command or [sys.executable, "-m", "mailproxy.cli"]), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    local = start_local_mode({"MAILPROXY_SINK_PORT": str(free_port())})
    try:
        # An account of tenant "ops" pointing at local mode's SMTP sink
        account = {
            "id": "sink-acct",
            "tenant_id": "ops",
            "host": "127.0.0.1",
            "port": local.sink_port,
            "use_tls": False,
        }
        status, body = local.call("POST", "/account", account)
        assert (status, body) == (200, {"ok": True})
        yield local
    finally:
        code, output = stop_local_mode(local)
        assert code == 0, output


def send_one(local: LocalMode, subject: str) -> str:
    result = run_cli(
        local,
        "send",
        "--tenant",
        "ops",
        "--account",
        "sink-acct",
        "--to",
        "oncall@example.com",
        "--subject",
        subject,
        "--body",
        "Checking the pipes.",
    )
    assert result.returncode == 0, result.stderr
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("id: cli-")
    return first_line.removeprefix("id: ")


def wait_sent(local: LocalMode, message_id: str) -> None:
    def sent() -> bool:
        _, listing = local.call("GET", "/messages?tenant_id=ops")
        return any(r["id"] == message_id and r["status"] == "sent" for r in listing["messages"])

    local.wait_until(sent, timeout=30, what=f"{message_id} sent")


def test_status_prints_health_and_active(local: LocalMode) -> None:
    # Given a running local mode
    # When the operator asks for its status
    result = run_cli(local, "status")

    # Then it answers ok and active, exit 0, without printing the token
    assert result.returncode == 0, result.stderr
    assert "health: ok" in result.stdout
    assert "ok: true" in result.stdout
    assert "active: true" in result.stdout
    assert local.token not in result.stdout + result.stderr


def test_send_delivers_a_test_message_into_the_sink(local: LocalMode) -> None:
    # Given an account pointing at the sink
    # When the operator sends a test message
    message_id = send_one(local, "CLI smoke test")

    # Then the answer says it was queued
    # And the mail arrives in the sink with that id
    def in_sink() -> list[dict] | None:
        _, listing = local.call("GET", "/local/sink/messages")
        mails = [m for m in listing["messages"] if m["mail_id"] == message_id]
        return mails or None

    mails = local.wait_until(in_sink, timeout=30, what="the CLI mail in the sink")
    assert mails[0]["subject"] == "CLI smoke test"
    assert mails[0]["recipients"] == ["oncall@example.com"]


def test_send_prints_the_api_answer(local: LocalMode) -> None:
    # When the operator sends a test message
    result = run_cli(
        local, "send", "--tenant", "ops", "--account", "sink-acct", "--to", "a@example.com"
    )

    # Then the API's answer is printed as JSON after the id
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.split("\n", 1)[1])
    assert answer == {"ok": True, "queued": 1, "rejected": []}


def test_messages_json_lists_what_was_sent(local: LocalMode) -> None:
    # Given a message sent through the CLI and delivered
    message_id = send_one(local, "listed")
    wait_sent(local, message_id)

    # When the operator lists the tenant's messages as JSON
    result = run_cli(local, "messages", "--tenant", "ops", "--json")

    # Then the output parses and holds that message, sent
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    by_id = {record["id"]: record for record in records}
    assert by_id[message_id]["status"] == "sent"
    assert by_id[message_id]["account_id"] == "sink-acct"

    # And the table shows the same message with its status and account
    table = run_cli(local, "messages", "--tenant", "ops")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == [
        "ID",
        "STATUS",
        "PRIORITY",
        "ACCOUNT",
        "SENT/ERROR",
    ]
    row = next(line for line in table.stdout.splitlines() if line.startswith(message_id))
    assert row.split()[:4] == [message_id, "sent", "medium", "sink-acct"]

    # And --active leaves the sent message out, --limit caps the rows
    active = json.loads(run_cli(local, "messages", "--tenant", "ops", "--active", "--json").stdout)
    assert message_id not in {record["id"] for record in active}
    limited = json.loads(
        run_cli(local, "messages", "--tenant", "ops", "--limit", "1", "--json").stdout
    )
    assert len(limited) == 1


def test_diagnose_counts_messages_per_account(local: LocalMode) -> None:
    # Given delivered messages of tenant ops, and one that fails for an unknown account
    message_id = send_one(local, "diagnosed")
    wait_sent(local, message_id)
    status, body = local.call(
        "POST",
        "/commands/add-messages",
        {
            "messages": [
                {
                    "id": "bad-account-1",
                    "tenant_id": "ops",
                    "account_id": "nowhere",
                    "from": "a@example.com",
                    "to": "b@example.com",
                    "subject": "doomed",
                }
            ]
        },
    )
    assert status == 400, body  # refused, yet recorded with its error
    _, listing = local.call("GET", "/messages?tenant_id=ops")
    expected_sent = sum(
        1
        for r in listing["messages"]
        if r["status"] == "sent" and r.get("account_id") == "sink-acct"
    )

    # When the operator diagnoses the tenant, without AWS access
    result = run_cli(local, "diagnose", "--tenant", "ops")

    # Then each account gets a line of counts per status
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    at = lines.index(next(line for line in lines if "account sink-acct" in line))
    assert lines[at].startswith("tenant ops account sink-acct")
    counts = dict(item.split("=") for item in lines[at + 1].split())
    assert list(counts)[:6] == ["pending", "scheduled", "deferred", "sending", "sent", "error"]
    assert int(counts["sent"]) == expected_sent >= 1
    assert int(counts["error"]) == 0

    # And the failed message shows among the last errors of its account
    nowhere = lines.index("tenant ops account nowhere: 1 message(s)")
    assert "error=1" in lines[nowhere + 1]
    assert lines[nowhere + 2] == "  last errors:"
    assert lines[nowhere + 3].startswith("    bad-account-1 at ")
    assert "Account 'nowhere' not found" in lines[nowhere + 3]

    # And the DLQ depth is reported as unavailable instead of crashing
    assert "DLQ depth: unavailable (no AWS access)" in result.stdout


def test_a_bad_token_exits_1_with_the_401_detail(local: LocalMode) -> None:
    # Given a wrong token
    # When the operator lists messages with it
    result = run_cli(local, "messages", token="not-the-token")

    # Then the exit code is 1 and stderr names the status and the detail
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr
    assert "Invalid or missing API token" in result.stderr
    assert "not-the-token" not in result.stdout + result.stderr


def test_usage_errors_exit_2(local: LocalMode) -> None:
    # When a required option is missing, or a priority label is unknown
    missing = run_cli(local, "send", "--tenant", "ops")
    unknown = run_cli(local, "redrive-dlq", "--priority", "urgent")

    # Then both are usage errors
    assert missing.returncode == 2
    assert "--account" in missing.stderr
    assert unknown.returncode == 2


def test_the_console_script_is_declared_and_runs(local: LocalMode) -> None:
    # Given the project metadata
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())

    # Then it declares the `mailproxy` console script
    assert project["project"]["scripts"] == {"mailproxy": "mailproxy.cli:main"}

    # And, where the project is installed (make run, make test), the script answers like the module
    script = Path(sys.executable).parent / "mailproxy"
    if not script.exists():
        pytest.skip("console script not installed: run `make test`")
    result = run_cli(local, "status", command=[str(script)])
    assert result.returncode == 0, result.stderr
    assert "active: true" in result.stdout


def test_redrive_moves_dlq_messages_back_to_their_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    from mailproxy import cli

    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    with mock_aws():
        import boto3

        # Given the medium queue and its DLQ holding 3 messages
        sqs = boto3.client("sqs", region_name="eu-west-1")
        queue = sqs.create_queue(QueueName="mailproxy-medium")["QueueUrl"]
        dlq = sqs.create_queue(QueueName="mailproxy-medium-dlq")["QueueUrl"]
        bodies = {json.dumps({"tenant_id": "ops", "id": f"m-{n}"}) for n in range(3)}
        for body in bodies:
            sqs.send_message(QueueUrl=dlq, MessageBody=body)

        # When the operator redrives at most 2 of them, then the rest
        first = cli.main(["redrive-dlq", "--priority", "medium", "--max", "2"])
        second = cli.main(["redrive-dlq", "--priority", "2"])

        # Then both runs succeed and every message is back on the queue, none left in the DLQ
        assert (first, second) == (0, 0)
        moved: set[str] = set()
        while received := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in received:
                moved.add(message["Body"])
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        assert moved == bodies
        depth = sqs.get_queue_attributes(
            QueueUrl=dlq,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert depth == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }


def test_redrive_reports_how_many_moved(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moto import mock_aws

    from mailproxy import cli

    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    with mock_aws():
        import boto3

        # Given a high queue whose DLQ holds 3 messages
        sqs = boto3.client("sqs", region_name="eu-west-1")
        sqs.create_queue(QueueName="mailproxy-high")
        dlq = sqs.create_queue(QueueName="mailproxy-high-dlq")["QueueUrl"]
        for n in range(3):
            sqs.send_message(QueueUrl=dlq, MessageBody=f"m-{n}")

        # When the operator redrives it
        code = cli.main(["redrive-dlq", "--priority", "high"])

        # Then it reports the 3 moved
        assert code == 0
        assert (
            "moved 3 message(s) from mailproxy-high-dlq to mailproxy-high"
            in capsys.readouterr().out
        )

        # And a DLQ that does not exist is an error, exit 1
        assert cli.main(["redrive-dlq", "--priority", "low"]) == 1
        assert "mailproxy-low-dlq" in capsys.readouterr().err


def test_dlq_depths_per_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    from mailproxy import cli

    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    with mock_aws():
        import boto3

        # Given DLQs for three priorities, the low one holding 2 messages, and none for immediate
        sqs = boto3.client("sqs", region_name="eu-west-1")
        for label in ("high", "medium", "low"):
            sqs.create_queue(QueueName=f"mailproxy-{label}-dlq")
        low = sqs.get_queue_url(QueueName="mailproxy-low-dlq")["QueueUrl"]
        for n in range(2):
            sqs.send_message(QueueUrl=low, MessageBody=f"m-{n}")

        # When the depths are read
        depths = cli.dlq_depths("mailproxy")

    # Then each priority has its count, and the missing queue says so
    assert depths == {"immediate": None, "high": 0, "medium": 0, "low": 2}


def test_stack_option_reads_the_api_url_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    from mailproxy import cli

    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDFORMATION", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    with mock_aws():
        import boto3

        # Given a stack whose ApiUrl output names the API
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"ApiUrl": {"Value": "https://api.example.test/prod/"}},
        }
        cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
        cloudformation.create_stack(StackName="mailproxy", TemplateBody=json.dumps(template))

        # When the URL is looked up, and when a stack does not exist
        url = cli.stack_api_url("mailproxy")
        with pytest.raises(cli.CliError, match="missing-stack"):
            cli.stack_api_url("missing-stack")

    # Then the output's value is the URL
    assert url == "https://api.example.test/prod/"
    # And --url with --stack is a usage error
    assert cli.main(["--url", "http://x", "--stack", "mailproxy", "status"]) == 2


def test_commands_lists_the_command_log_newest_first_and_exports_it(local: LocalMode) -> None:
    # Given a test message sent through the CLI (a state-changing call of tenant "ops")
    sent = run_cli(local, "send", "--tenant", "ops", "--account", "sink-acct", "--to", "a@b.test")
    assert sent.returncode == 0, sent.stderr
    # When the operator lists the command log of that tenant
    listed = run_cli(local, "commands", "--tenant", "ops", "--endpoint", "add-messages")
    # Then the call is there, with its answer's status
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["TIME", "STATUS", "TENANT", "ENDPOINT"]
    assert lines[1].split()[2:] == ["200", "ops", "POST", "/commands/add-messages"]
    # And the export is JSON a replay can read, oldest first, the account's upsert before it
    exported = run_cli(local, "commands", "--tenant", "ops", "--export")
    assert exported.returncode == 0, exported.stderr
    endpoints = [c["endpoint"] for c in json.loads(exported.stdout)]
    assert endpoints.index("POST /account") < endpoints.index("POST /commands/add-messages")
