"""The AWS call recorder of infra/local/aws_calls.py: off unless asked for; when on, one line
per call of a running handler, naming what it touches and never a value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.handlers import BUILTIN_HANDLERS

from infra.local import aws_calls
from infra.local.events import load_handler
from tests.support.handlers import ApiClient, message


@pytest.fixture
def recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "calls.jsonl"
    monkeypatch.setenv(aws_calls.RECORD_ENV, str(path))
    yield path
    aws_calls.uninstall_all()


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_off_by_default_the_handler_is_the_modules_own(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no MAILPROXY_RECORD_AWS_CALLS
    monkeypatch.delenv(aws_calls.RECORD_ENV, raising=False)
    before = list(BUILTIN_HANDLERS)
    # When a handler is loaded
    module = load_handler("api")
    # Then nothing is installed in botocore and the handler is not wrapped
    assert before == BUILTIN_HANDLERS
    assert module.lambda_handler.__module__ == module.__name__


def test_each_call_of_a_handler_is_recorded_under_its_function_without_values(
    recording: Path, aws: Any
) -> None:
    # Given the api recording its calls
    api = ApiClient(load_handler("api"))
    # When it stores an account with a password and a message
    account = {"id": "main", "tenant_id": "acme", "host": "127.0.0.1", "port": 25}
    assert api.call("POST", "/tenant", {"id": "acme"})[0] == 200
    assert api.call("POST", "/account", account | {"username": "u", "password": "pa55"})[0] == 200
    assert api.call("POST", "/commands/add-messages", {"messages": [message("m1")]})[0] == 200
    # and the test itself makes a call of its own
    import boto3

    boto3.client("sqs").list_queues()
    # Then every line is the api's, none the test's
    calls = lines(recording)
    assert {call["function"] for call in calls} == {"api"}
    assert ("sqs", "ListQueues") not in {(c["service"], c["operation"]) for c in calls}
    # the password's encryption names the key, not the password
    [encrypt] = [call for call in calls if call["operation"] == "Encrypt"]
    assert encrypt["names"] == {"KeyId": aws.keys["secrets"]}
    assert "pa55" not in recording.read_text()
    # an item read names its table, not the item's key
    gets = [call["names"] for call in calls if call["operation"] == "GetItem"]
    assert gets
    assert all(set(names) == {"TableName"} for names in gets), gets
    # and the message's transaction names each item's table
    puts = [
        c["names"]["TransactItems"]
        for c in calls
        if c["operation"] == "TransactWriteItems" and c["names"]["TransactItems"][0][0] == "Put"
    ]
    assert puts == [
        [
            ["Put", aws.tables["messages"]],
            ["Put", aws.tables["bodies"]],
        ]
    ]
    assert "Body of m1" not in recording.read_text()
