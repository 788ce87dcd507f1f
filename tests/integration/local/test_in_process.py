"""Local mode's handlers reach the emulation by a function call (infra/local/in_process.py):
the same moto backends the server serves, without the loopback HTTP hop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from infra.local import in_process, moto_patches
from infra.local.aws_server import DYNAMODB_LOCK, LocalAwsServer
from tests.conftest import FAKE_AWS

NOTHING_LISTENS = "http://127.0.0.1:9"  # the discard port: connections are refused


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    moto_patches.install()
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        in_process.install(NOTHING_LISTENS, DYNAMODB_LOCK)
        try:
            yield boto3.Session()  # sessions made after install carry the route
        finally:
            in_process.uninstall()


def test_dynamodb_and_sqs_are_answered_without_a_server(session: boto3.Session) -> None:
    # Given clients addressed to an endpoint where nothing listens
    dynamodb = session.client("dynamodb", endpoint_url=NOTHING_LISTENS)
    sqs = session.client("sqs", endpoint_url=NOTHING_LISTENS)

    # When they create, write and read
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="hello")

    # Then moto answers them, errors included, as it would over HTTP
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
    assert [message["Body"] for message in received] == ["hello"]
    with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
        dynamodb.get_item(TableName="missing", Key={"pk": {"S": "a"}})


def test_a_service_it_does_not_route_still_goes_by_http(session: boto3.Session) -> None:
    s3 = session.client(
        "s3",
        endpoint_url=NOTHING_LISTENS,
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(EndpointConnectionError):
        s3.list_buckets()


def test_the_server_and_the_route_share_one_emulation(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given local mode's server, and the route for its endpoint
    moto_patches.install()
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    server = LocalAwsServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        by_http = boto3.Session().client("sqs", endpoint_url=endpoint)  # made before: HTTP
        in_process.install(endpoint, DYNAMODB_LOCK)
        routed = boto3.Session().client("sqs", endpoint_url=endpoint)

        # When a queue made by the route gets a message over HTTP
        queue_url = routed.create_queue(QueueName="shared")["QueueUrl"]
        by_http.send_message(QueueUrl=queue_url, MessageBody="from a script")

        # Then the route sees it: the user's aws CLI and the handlers see one state
        received: list[Any] = routed.receive_message(QueueUrl=queue_url)["Messages"]
        assert [message["Body"] for message in received] == ["from a script"]
    finally:
        in_process.uninstall()
        server.stop()
