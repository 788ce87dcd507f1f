"""The semantics the proxy relies on from its AWS emulation, on moto as local mode patches it
(infra/local/moto_patches.py). A moto upgrade that moves the internals these patches touch
fails here, not in front of a user."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.local import moto_patches
from tests.support.handlers import FAKE_AWS

STRING_KEYS = [{"AttributeName": "pk", "AttributeType": "S"}]


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    moto_patches.install()
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName="items",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=STRING_KEYS,
            BillingMode="PAY_PER_REQUEST",
        )
        client.create_table(
            TableName="events",
            KeySchema=[
                {"AttributeName": "tenant", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "tenant", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "pending", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-pending",
                    "KeySchema": [
                        {"AttributeName": "pending", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _item(client: Any, pk: str) -> dict[str, Any] | None:
    return client.get_item(TableName="items", Key={"pk": {"S": pk}}).get("Item")


def _pending(client: Any, tenant: str, **kwargs: Any) -> list[str]:
    found = client.query(
        TableName="events",
        IndexName="by-pending",
        KeyConditionExpression="pending = :t",
        ExpressionAttributeValues={":t": {"S": tenant}},
        **kwargs,
    )
    return [item["sk"]["S"] for item in found["Items"]]


def test_a_failed_condition_cancels_the_whole_transaction_and_reports_each_reason(
    dynamodb: Any,
) -> None:
    # Given an item that exists
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "taken"}})

    # When a transaction puts a new item and requires the existing one to be absent
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "items", "Item": {"pk": {"S": "new"}}}},
                {
                    "Put": {
                        "TableName": "items",
                        "Item": {"pk": {"S": "taken"}, "v": {"N": "2"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    # Then it is cancelled with one reason per item, and nothing of it is written
    error = cancelled.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in error["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert _item(dynamodb, "new") is None
    assert _item(dynamodb, "taken") == {"pk": {"S": "taken"}}


def test_earlier_items_of_a_cancelled_transaction_are_rolled_back(dynamodb: Any) -> None:
    # Given two items, one with a counter
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "counter"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "doomed"}, "v": {"S": "kept"}})

    # When a transaction updates the counter, deletes the other, puts a third, and then
    # fails a condition check on its last item
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "items",
                        "Key": {"pk": {"S": "counter"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Delete": {"TableName": "items", "Key": {"pk": {"S": "doomed"}}}},
                {"Put": {"TableName": "items", "Item": {"pk": {"S": "third"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "items",
                        "Key": {"pk": {"S": "missing"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )

    # Then every item is as it was before
    assert _item(dynamodb, "counter") == {"pk": {"S": "counter"}, "n": {"N": "1"}}
    assert _item(dynamodb, "doomed") == {"pk": {"S": "doomed"}, "v": {"S": "kept"}}
    assert _item(dynamodb, "third") is None


def test_a_transaction_copies_the_items_it_writes_never_a_whole_table(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    # Given a table whose copying would fail loudly
    def no_table_copies(self: Any, memo: Any) -> Any:
        raise AssertionError("a whole table was copied")

    monkeypatch.setattr(Table, "__deepcopy__", no_table_copies, raising=False)

    # When transactions succeed and fail on it
    dynamodb.transact_write_items(
        TransactItems=[{"Put": {"TableName": "items", "Item": {"pk": {"S": "a"}}}}]
    )
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "items", "Item": {"pk": {"S": "b"}}}},
                {
                    "Put": {
                        "TableName": "items",
                        "Item": {"pk": {"S": "a"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    # Then both behave as DynamoDB does, and no table was copied
    assert _item(dynamodb, "a") is not None
    assert _item(dynamodb, "b") is None


def test_an_index_query_follows_puts_updates_deletes_and_rollbacks(dynamodb: Any) -> None:
    def put(sk: str, pending: str | None) -> None:
        item = {"tenant": {"S": "t"}, "sk": {"S": sk}}
        if pending:
            item["pending"] = {"S": pending}
        dynamodb.put_item(TableName="events", Item=item)

    # Given events of two tenants waiting, and one that is not in the sparse index
    assert _pending(dynamodb, "acme") == []  # the index is known before anything is written
    put("e1", "acme")
    put("e2", "acme")
    put("e3", "other")
    put("e4", None)
    assert _pending(dynamodb, "acme") == ["e1", "e2"]

    # When one leaves the index by an update, one moves to another key, one is deleted
    dynamodb.update_item(
        TableName="events",
        Key={"tenant": {"S": "t"}, "sk": {"S": "e1"}},
        UpdateExpression="REMOVE pending",
    )
    dynamodb.update_item(
        TableName="events",
        Key={"tenant": {"S": "t"}, "sk": {"S": "e3"}},
        UpdateExpression="SET pending = :p",
        ExpressionAttributeValues={":p": {"S": "acme"}},
    )
    dynamodb.delete_item(TableName="events", Key={"tenant": {"S": "t"}, "sk": {"S": "e2"}})

    # Then the index shows exactly what the table holds
    assert _pending(dynamodb, "acme") == ["e3"]
    assert _pending(dynamodb, "other") == []

    # And a cancelled transaction that moved items leaves the index as it was
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "events",
                        "Key": {"tenant": {"S": "t"}, "sk": {"S": "e3"}},
                        "UpdateExpression": "REMOVE pending",
                    }
                },
                {
                    "Put": {
                        "TableName": "events",
                        "Item": {"tenant": {"S": "t"}, "sk": {"S": "e5"}, "pending": {"S": "acme"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": "events",
                        "Key": {"tenant": {"S": "t"}, "sk": {"S": "e4"}},
                        "ConditionExpression": "attribute_exists(pending)",
                    }
                },
            ]
        )
    assert _pending(dynamodb, "acme") == ["e3"]
    # with the limits, order and key conditions of a real index query
    put("e6", "acme")
    put("e7", "acme")
    assert _pending(dynamodb, "acme", Limit=2) == ["e3", "e6"]
    assert _pending(dynamodb, "acme", ScanIndexForward=False) == ["e7", "e6", "e3"]


def test_a_partition_query_sees_only_its_partition(dynamodb: Any) -> None:
    # Given items of several partitions
    for tenant in ("a", "b"):
        for n in range(3):
            dynamodb.put_item(
                TableName="events", Item={"tenant": {"S": tenant}, "sk": {"S": f"{n}"}}
            )

    # When one partition is queried, with and without a sort key condition
    whole = dynamodb.query(
        TableName="events",
        KeyConditionExpression="tenant = :t",
        ExpressionAttributeValues={":t": {"S": "b"}},
    )
    some = dynamodb.query(
        TableName="events",
        KeyConditionExpression="tenant = :t AND sk > :s",
        ExpressionAttributeValues={":t": {"S": "b"}, ":s": {"S": "0"}},
    )

    # Then each returns its own items in sort key order
    assert [(i["tenant"]["S"], i["sk"]["S"]) for i in whole["Items"]] == [
        ("b", "0"),
        ("b", "1"),
        ("b", "2"),
    ]
    assert [i["sk"]["S"] for i in some["Items"]] == ["1", "2"]


def test_expired_items_leave_the_table_and_its_index(dynamodb: Any) -> None:
    from moto.backends import get_backend

    # Given an event that expired and one that has not
    for sk, expires in (("old", 100), ("young", 10_000)):
        dynamodb.put_item(
            TableName="events",
            Item={
                "tenant": {"S": "t"},
                "sk": {"S": sk},
                "pending": {"S": "acme"},
                "expires_at": {"N": str(expires)},
            },
        )
    assert _pending(dynamodb, "acme") == ["old", "young"]

    # When the TTL sweep runs at time 5,000
    table = get_backend("dynamodb")["123456789012"]["us-east-1"].get_table("events")
    removed = moto_patches.expire_items(table, "expires_at", now=5_000)

    # Then only the expired one is gone, from the table and from the index
    assert removed == 1
    assert _pending(dynamodb, "acme") == ["young"]


def test_a_repeated_update_expression_applies_the_values_of_each_request(dynamodb: Any) -> None:
    # Given an item, and one update expression sent twice with different values
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    expression = "SET #s = :status ADD n :step"
    for status, step in (("queued", "2"), ("sent", "5")):
        dynamodb.update_item(
            TableName="items",
            Key={"pk": {"S": "a"}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":status": {"S": status}, ":step": {"N": step}},
        )

    # Then the item holds what the second request said, added to what the first did
    item = _item(dynamodb, "a")
    assert item is not None
    assert item["status"] == {"S": "sent"}
    assert item["n"] == {"N": "8"}


def test_a_repeated_condition_is_decided_by_the_values_of_each_request(dynamodb: Any) -> None:
    # Given an item at version 1, and one condition text sent with different values
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "a"}, "v": {"N": "1"}})

    def bump(expected: str) -> None:
        dynamodb.update_item(
            TableName="items",
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET v = :next",
            ConditionExpression="v = :expected AND attribute_exists(pk)",
            ExpressionAttributeValues={
                ":expected": {"N": expected},
                ":next": {"N": str(int(expected) + 1)},
            },
        )

    # When it is sent right, then with a stale value, then right again
    bump("1")
    with pytest.raises(ClientError) as stale:
        bump("1")
    bump("2")

    # Then the stale one failed on its condition and the others applied
    assert stale.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    item = _item(dynamodb, "a")
    assert item is not None
    assert item["v"] == {"N": "3"}


def test_conditions_of_one_shape_in_one_transaction_each_use_their_own_values(
    dynamodb: Any,
) -> None:
    # Given three items at versions 1, 2 and 3
    for pk, version in (("a", "1"), ("b", "2"), ("c", "3")):
        dynamodb.put_item(TableName="items", Item={"pk": {"S": pk}, "v": {"N": version}})

    def bump(pk: str, expected: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": "items",
                "Key": {"pk": {"S": pk}},
                "UpdateExpression": "SET v = :next",
                "ConditionExpression": "v = :expected",
                "ExpressionAttributeValues": {
                    ":expected": {"N": expected},
                    ":next": {"N": str(int(expected) + 1)},
                },
            }
        }

    # When one transaction bumps the three with one condition shape, the second one stale
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[bump("a", "1"), bump("b", "9"), bump("c", "3")]
        )
    # Then only the second is refused, and nothing changed
    reasons = cancelled.value.response["CancellationReasons"]
    assert [reason["Code"] for reason in reasons] == ["None", "ConditionalCheckFailed", "None"]
    assert [(_item(dynamodb, pk) or {})["v"]["N"] for pk in "abc"] == ["1", "2", "3"]

    # When it is sent right
    dynamodb.transact_write_items(TransactItems=[bump("a", "1"), bump("b", "2"), bump("c", "3")])
    # Then each item moved from its own value
    assert [(_item(dynamodb, pk) or {})["v"]["N"] for pk in "abc"] == ["2", "3", "4"]


def test_an_invalid_expression_is_refused_every_time_it_is_sent(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "a"}})
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            dynamodb.update_item(
                TableName="items",
                Key={"pk": {"S": "a"}},
                UpdateExpression="SET = :x",
                ExpressionAttributeValues={":x": {"S": "y"}},
            )
        assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_a_checked_update_shape_is_still_refused_with_names_that_break_it(dynamodb: Any) -> None:
    # Given an update expression that passed with two distinct attribute names
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "a"}})

    def update(names: dict[str, str]) -> None:
        dynamodb.update_item(
            TableName="items",
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET #x = :x, #y = :y",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":x": {"S": "1"}, ":y": {"S": "2"}},
        )

    update({"#x": "first", "#y": "second"})

    # When the same expression names one attribute twice, or the table's key
    # Then each is refused, every time, as DynamoDB refuses them
    for names in ({"#x": "same", "#y": "same"}, {"#x": "pk", "#y": "other"}) * 2:
        with pytest.raises(ClientError) as refused:
            update(names)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    update({"#x": "first", "#y": "second"})
    assert _item(dynamodb, "a") == {
        "pk": {"S": "a"},
        "first": {"S": "1"},
        "second": {"S": "2"},
    }


@pytest.mark.parametrize("route", ["http", "piped"])
def test_concurrent_writers_never_lose_an_update_in_server_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, route: str
) -> None:
    from infra.local.aws_process import AwsProcess
    from infra.local.aws_server import LocalAwsServer

    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    server: LocalAwsServer | AwsProcess
    if route == "piped":  # the emulation's own process, as local mode's handlers reach it
        server = AwsProcess(tmp_path / "state")
        endpoint = server.wait_started().endpoint
        server.install()
    else:
        server = LocalAwsServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
    try:
        client: Any = boto3.Session().client("dynamodb", endpoint_url=endpoint)
        table = f"race-{route}"
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=STRING_KEYS,
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName=table, Item={"pk": {"S": "counter"}, "n": {"N": "0"}})
        increments: list[int] = []
        lock = threading.Lock()

        def writer(name: str) -> None:
            # Given writers that add to one counter and write items of their own, while
            # their transactions keep failing on a condition about another item
            own: Any = boto3.Session().client("dynamodb", endpoint_url=endpoint)
            for n in range(25):
                own.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": table,
                                "Key": {"pk": {"S": "counter"}},
                                "UpdateExpression": "ADD n :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                            }
                        },
                        {"Put": {"TableName": table, "Item": {"pk": {"S": f"{name}-{n}"}}}},
                    ]
                )
                with lock:
                    increments.append(1)
                with pytest.raises(ClientError):
                    own.transact_write_items(
                        TransactItems=[
                            {"Put": {"TableName": table, "Item": {"pk": {"S": f"x-{name}"}}}},
                            {
                                "ConditionCheck": {
                                    "TableName": table,
                                    "Key": {"pk": {"S": "never"}},
                                    "ConditionExpression": "attribute_exists(pk)",
                                }
                            },
                        ]
                    )

        # When four of them run at once
        threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        # Then every update and every item is there, and no cancelled item is
        counter = client.get_item(TableName=table, Key={"pk": {"S": "counter"}})["Item"]
        assert int(counter["n"]["N"]) == len(increments) == 100
        keys = {
            item["pk"]["S"]
            for page in client.get_paginator("scan").paginate(TableName=table)
            for item in page["Items"]
        }
        assert {f"w{i}-{n}" for i in range(4) for n in range(25)} <= keys
        assert not any(key.startswith("x-") for key in keys)
    finally:
        server.stop()


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    moto_patches.install()
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("sqs")


def _bodies(received: dict[str, Any]) -> list[str]:
    return [message["Body"] for message in received.get("Messages", [])]


def test_a_queue_hands_out_visible_messages_in_order_and_forgets_deleted_ones(sqs: Any) -> None:
    # Given a queue with three messages, one of them delayed
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    for body in ("first", "second"):
        sqs.send_message(QueueUrl=url, MessageBody=body)

    # When they are received and the first is deleted
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)
    assert _bodies(received) == ["first", "second"]
    handles = {m["Body"]: m["ReceiptHandle"] for m in received["Messages"]}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handles["first"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handles["first"])  # twice is harmless

    # Then after the visibility timeout only the undeleted one comes back
    time.sleep(1.2)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert _bodies(again) == ["second"]
    assert again["Messages"][0]["ReceiptHandle"] != handles["second"]
    # and an unknown receipt handle is refused
    with pytest.raises(ClientError) as refused:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-receipt")
    assert refused.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"


def test_a_message_received_too_often_moves_to_its_dead_letter_queue(sqs: Any) -> None:
    # Given a queue whose dead-letter queue takes messages after two receives
    dlq_url = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    url = sqs.create_queue(
        QueueName="work",
        Attributes={
            "RedrivePolicy": (
                f'{{"deadLetterTargetArn": "{dlq_arn["Attributes"]["QueueArn"]}", '
                '"maxReceiveCount": 2}'
            )
        },
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")

    # When it is received twice and never deleted
    for _ in range(2):
        assert _bodies(sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)) == ["poison"]

    # Then the third receive finds it gone to the dead-letter queue
    assert _bodies(sqs.receive_message(QueueUrl=url)) == []
    assert _bodies(sqs.receive_message(QueueUrl=dlq_url)) == ["poison"]


def test_a_long_poll_returns_as_soon_as_a_message_arrives(sqs: Any) -> None:
    # Given an empty queue and a receiver waiting on it
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    got: list[list[str]] = []
    receiver = threading.Thread(
        target=lambda: got.append(_bodies(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)))
    )
    receiver.start()

    # When a message is sent meanwhile
    time.sleep(0.3)
    sqs.send_message(QueueUrl=url, MessageBody="news")

    # Then the waiting receive hands it over
    receiver.join(timeout=10)
    assert got == [["news"]]
