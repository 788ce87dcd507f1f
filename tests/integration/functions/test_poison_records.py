"""Records the sender cannot use: one unreadable record fails alone (partial batch failure),
comes back until the queue's redrive policy moves it to the dead-letter queue, and a
duplicated record never sends a message twice."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from infra.local.events import LambdaContext, sqs_event, sqs_record
from infra.local.pollers import poll_once
from infra.resources import QUEUES
from mailproxy.domain.priority import Priority
from tests.support.api_calls import statuses
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.sqs import queue_arn, queue_depths, receive_all

POISON = "{this is not json"


@pytest.fixture
def with_account(api: ApiClient, smtp_server: SmtpServer) -> SmtpServer:
    assert api.call("POST", "/account", account_for(smtp_server)) == (200, {"ok": True})
    return smtp_server


def add(api: ApiClient, *ids: str) -> None:
    status, body = api.call(
        "POST", "/commands/add-messages", {"messages": [message(i) for i in ids]}
    )
    assert (status, body["queued"]) == (200, len(ids)), body


def mail_ids(server: SmtpServer) -> list[str]:
    return sorted(str(item.message["X-Genro-Mail-ID"]) for item in server.received)


def dlq_url(queue_url: str) -> str:
    name = queue_url.rsplit("/", 1)[-1]
    return str(boto3.client("sqs").get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"])


@pytest.mark.usefixtures("with_account")
def test_one_unreadable_record_in_a_batch_of_ten_fails_alone(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a batch of nine good references and, in its middle, a record that is not JSON
    ids = [f"m{n}" for n in range(1, 10)]
    add(api, *ids)
    url = aws.queues["medium"]
    good = receive_all(url)
    assert len(good) == 9
    arn = queue_arn(url)
    records = [sqs_record(r["Body"], arn, r["ReceiptHandle"], r["MessageId"]) for r in good]
    records.insert(4, sqs_record(POISON, arn, "receipt-poison", "poison"))
    # When the sender handles the batch
    response = sender.handler.lambda_handler(sqs_event(records), LambdaContext())
    # Then only the unreadable record is reported failed
    assert response == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    # and the nine messages were delivered, once each
    assert mail_ids(smtp_server) == ids
    assert statuses(api) == dict.fromkeys(ids, "sent")


@pytest.mark.parametrize(
    "body",
    [
        POISON,
        "",
        "[]",
        "null",
        "42",
        '{"tenant_id": "acme"}',
        '{"tenant_id": "acme", "message_id": "m1", "ticket": "t", "priority": "urgent"}',
        '{"tenant_id": "acme", "message_id": "m1", "ticket": "t", "priority": 9}',
    ],
    ids=[
        "not-json",
        "empty",
        "json-list",
        "json-null",
        "json-number",
        "incomplete",
        "bad-priority",
        "unknown-priority",
    ],
)
@pytest.mark.usefixtures("with_account")
def test_every_kind_of_unusable_record_fails_alone(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer, body: str
) -> None:
    # Given one good reference and one unusable record in a batch
    add(api, "m1")
    url = aws.queues["medium"]
    [good] = receive_all(url)
    arn = queue_arn(url)
    event = sqs_event(
        [
            sqs_record(body, arn, "receipt-bad", "bad"),
            sqs_record(good["Body"], arn, good["ReceiptHandle"], good["MessageId"]),
        ]
    )
    # When handled / Then only the unusable one fails, and the good one is sent
    response = sender.handler.lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert mail_ids(smtp_server) == ["m1"]


@pytest.mark.usefixtures("with_account")
def test_an_unreadable_record_lands_in_the_dead_letter_queue_after_five_receives(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given an unreadable record on the medium queue, next to a good reference
    sqs = boto3.client("sqs")
    url = aws.queues["medium"]
    dead_letters = dlq_url(url)
    sqs.send_message(QueueUrl=url, MessageBody=POISON)
    add(api, "m1")
    assert QUEUES[Priority.MEDIUM].max_receive_count == 5
    receipts: list[str] = []
    counts: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for record in event["Records"]:
            if record["body"] == POISON:
                receipts.append(record["receiptHandle"])
                counts.append(int(record["attributes"]["ApproximateReceiveCount"]))
        result: dict[str, Any] = sender.handler.lambda_handler(event, context)
        return result

    # When the poller runs again and again, the failed record made visible at once each time
    # (instead of waiting out the queue's 360 s visibility timeout)
    polls = []
    for _ in range(8):
        seen = len(receipts)
        polls.append(poll_once(sqs, url, handler))
        if len(receipts) > seen:
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=receipts[-1], VisibilityTimeout=0
            )
    # Then the good message went at the first poll, once
    assert mail_ids(smtp_server) == ["m1"]
    assert statuses(api) == {"m1": "sent"}
    # and the unreadable record was received five times, then moved to the dead-letter queue
    assert counts == [1, 2, 3, 4, 5]
    assert polls[:5] == [2, 1, 1, 1, 1]
    assert set(polls[5:]) == {0}
    assert queue_depths(aws.queues)["medium"] == 0
    [dead] = sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10)["Messages"]
    assert dead["Body"] == POISON


@pytest.mark.usefixtures("with_account")
def test_a_duplicated_record_in_one_batch_sends_once(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given the same reference queued twice (at-least-once delivery, or a double enqueue)
    add(api, "m1")
    url = aws.queues["medium"]
    [record] = receive_all(url, hide=False)
    boto3.client("sqs").send_message(QueueUrl=url, MessageBody=record["Body"])
    assert queue_depths(aws.queues)["medium"] == 2
    # When the sender drains the queue (both copies in one batch)
    processed = sender.drain()
    # Then both records were handled and acknowledged, with one SMTP transaction
    assert processed == 2
    assert len(smtp_server.received) == 1
    assert queue_depths(aws.queues)["medium"] == 0
    status, body = api.call("GET", "/messages", query="include_history=true")
    assert status == 200, body
    [stored] = body["messages"]
    assert stored["status"] == "sent"
    assert [e["event_type"] for e in stored["history"]] == ["sent"]


@pytest.mark.usefixtures("with_account")
def test_a_duplicated_record_in_separate_batches_sends_once(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given the same reference delivered in two separate invocations
    add(api, "m1")
    url = aws.queues["medium"]
    [record] = receive_all(url)
    arn = queue_arn(url)
    first = sqs_event([sqs_record(record["Body"], arn, record["ReceiptHandle"], "copy-1")])
    second = sqs_event([sqs_record(record["Body"], arn, record["ReceiptHandle"], "copy-2")])
    # When both are handled
    assert sender.handler.lambda_handler(first, LambdaContext()) == {"batchItemFailures": []}
    assert sender.handler.lambda_handler(second, LambdaContext()) == {"batchItemFailures": []}
    # Then the message went once and the second copy was acknowledged without a send
    assert len(smtp_server.received) == 1
    assert statuses(api) == {"m1": "sent"}
