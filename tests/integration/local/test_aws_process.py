"""Local mode's AWS emulation runs in a process of its own (infra/local/aws_process.py): the
handlers' requests reach its moto over pipes, the user's scripts over HTTP, one state for both."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.aws_process import AwsProcess, EmulationStopped
from infra.local.run import StartupError
from tests.support.handlers import FAKE_AWS


@pytest.fixture
def emulation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AwsProcess]:
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws = AwsProcess(tmp_path / "state")
    try:
        aws.wait_started()
        aws.install()  # sessions made from now on carry the route
        yield aws
    finally:
        aws.stop()


def _client(aws: AwsProcess, service: str) -> Any:
    return boto3.Session().client(service, endpoint_url=aws.endpoint)


def _table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_dynamodb_and_sqs_are_answered_over_the_pipes(emulation: AwsProcess) -> None:
    # Given clients of local mode's endpoint
    dynamodb = _client(emulation, "dynamodb")
    sqs = _client(emulation, "sqs")

    # When they create, write and read
    _table(dynamodb, "t")
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="hello")

    # Then moto answers them, errors included, as it would over HTTP
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
    assert [message["Body"] for message in received] == ["hello"]
    with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
        dynamodb.get_item(TableName="missing", Key={"pk": {"S": "a"}})
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "never"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    reasons = cancelled.value.response["CancellationReasons"]
    assert [reason["Code"] for reason in reasons] == ["None", "ConditionalCheckFailed"]


def test_the_pipes_and_http_share_one_emulation(emulation: AwsProcess) -> None:
    # Given a client made before the route (HTTP, as the user's aws CLI) and one after it
    emulation.uninstall()
    by_http = _client(emulation, "sqs")
    emulation.install()
    piped = _client(emulation, "sqs")

    # When a queue made over the pipes gets a message over HTTP
    queue_url = piped.create_queue(QueueName="shared")["QueueUrl"]
    by_http.send_message(QueueUrl=queue_url, MessageBody="from a script")

    # Then the pipes see it; and S3, which is never piped, is served by the same process
    received: list[Any] = piped.receive_message(QueueUrl=queue_url)["Messages"]
    assert [message["Body"] for message in received] == ["from a script"]
    s3 = _client(emulation, "s3")
    s3.create_bucket(Bucket="payloads")
    assert [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]] == ["payloads"]


def test_what_is_saved_is_there_after_a_restart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    folder = tmp_path / "state"
    # Given an emulation with a table, a queued message and a clock moved forward
    first = AwsProcess(folder)
    try:
        started = first.wait_started()
        first.install()
        dynamodb, sqs = _client(first, "dynamodb"), _client(first, "sqs")
        _table(dynamodb, "kept")
        dynamodb.put_item(TableName="kept", Item={"pk": {"S": "a"}})
        sqs.send_message(QueueUrl=sqs.create_queue(QueueName="q")["QueueUrl"], MessageBody="m")
        # When it is saved and stopped, and another starts on the same folder
        assert "1 items" in first.save(clock_offset_seconds=3600.0)
    finally:
        first.stop()
    second = AwsProcess(folder)
    try:
        restarted = second.wait_started()
        second.install()
        dynamodb, sqs = _client(second, "dynamodb"), _client(second, "sqs")

        # Then the item, the message, the clock and the admin token are back
        assert dynamodb.get_item(TableName="kept", Key={"pk": {"S": "a"}})["Item"]
        queue_url = sqs.get_queue_url(QueueName="q")["QueueUrl"]
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue_url)["Messages"]] == ["m"]
        assert restarted.clock_offset_seconds == 3600.0
        assert restarted.admin_token == started.admin_token
        assert restarted.restored is not None
    finally:
        second.stop()


def test_a_folder_in_use_is_refused(emulation: AwsProcess, tmp_path: Path) -> None:
    # Given an emulation holding a state folder
    # When a second one starts on it
    second = AwsProcess(tmp_path / "state")
    try:
        # Then it is refused, with what to do
        with pytest.raises(StartupError, match="another local mode is using the state"):
            second.wait_started()
    finally:
        second.stop()


def test_a_dead_emulation_fails_calls_instead_of_hanging(emulation: AwsProcess) -> None:
    # Given an emulation whose process was killed
    dynamodb = _client(emulation, "dynamodb")
    os.kill(emulation.process.pid, signal.SIGKILL)
    emulation.process.wait(10)

    # When a handler calls AWS, or local mode asks for a save
    # Then each fails at once, saying the emulation is gone
    with pytest.raises(EmulationStopped, match="gone"):
        dynamodb.list_tables()
    with pytest.raises(EmulationStopped, match="gone"):
        emulation.save(clock_offset_seconds=0.0)


def test_expired_items_are_deleted_by_the_clock_given(emulation: AwsProcess) -> None:
    # Given a table with TTL on, an item expired at t=1000 and one that expires at t=5000
    dynamodb = _client(emulation, "dynamodb")
    _table(dynamodb, "ttl")
    dynamodb.update_time_to_live(
        TableName="ttl", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
    )
    for key, expires in (("old", "1000"), ("new", "5000")):
        dynamodb.put_item(TableName="ttl", Item={"pk": {"S": key}, "expires": {"N": expires}})

    # When the emulation expires at t=2000
    expired = emulation.expire(2000.0)

    # Then only the expired item is gone
    keys = {item["pk"]["S"] for item in dynamodb.scan(TableName="ttl")["Items"]}
    assert (expired, keys) == (1, {"new"})
