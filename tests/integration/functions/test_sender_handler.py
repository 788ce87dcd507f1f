"""The sender Lambda over real SQS records (moto), delivering to real SMTP servers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.local.events import LambdaContext, sqs_event, sqs_record
from tests.support.api_calls import add_all
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import Received, RecordingHandler, SmtpServer
from tests.support.sqs import queue_arn, queue_depths, receive_all


def records(api: ApiClient, query: str = "include_history=true") -> dict[str, dict[str, Any]]:
    status, body = api.call("GET", "/messages", query=query)
    assert status == 200
    return {record["id"]: record for record in body["messages"]}


def by_mail_id(received: list[Received]) -> dict[str, Received]:
    return {str(item.message["X-Genro-Mail-ID"]): item for item in received}


@pytest.fixture
def with_account(api: ApiClient, smtp_server: SmtpServer) -> SmtpServer:
    assert api.call("POST", "/account", account_for(smtp_server)) == (200, {"ok": True})
    return smtp_server


@pytest.mark.usefixtures("with_account")
def test_messages_of_every_priority_are_delivered_as_submitted(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given messages on each of the four queues, one with cc and bcc, one in html
    add_all(
        api,
        message(
            "reset",
            priority="immediate",
            to="ann@example.test",
            bcc="audit@acme.test",
            cc="boss@example.test",
        ),
        message("alert", priority="high", to=["bob@example.test"]),
        message(
            "invoice", content_type="html", body="<p>Your invoice</p>", reply_to="billing@acme.test"
        ),
        message(
            "news",
            priority="low",
            to="a@example.test, b@example.test",
            return_path="bounces@acme.test",
        ),
    )
    assert queue_depths(aws.queues) == {"immediate": 1, "high": 1, "medium": 1, "low": 1}
    # When the senders drain the queues
    sender.drain()
    # Then each message reached its recipients once, with its body and the proxy's id
    mail = by_mail_id(smtp_server.received)
    assert sorted(mail) == ["alert", "invoice", "news", "reset"]
    assert len(smtp_server.received) == 4

    reset = mail["reset"]
    assert reset.mail_from == "app@acme.test"
    assert reset.recipients == ["ann@example.test", "boss@example.test", "audit@acme.test"]
    assert reset.message["To"] == "ann@example.test"
    assert reset.message["Cc"] == "boss@example.test"
    assert reset.message["Bcc"] is None
    assert b"audit@acme.test" not in reset.data
    assert reset.message["Subject"] == "Subject reset"
    assert reset.message.get_content().rstrip() == "Body of reset"

    assert mail["alert"].recipients == ["bob@example.test"]

    invoice = mail["invoice"].message
    assert invoice.get_content_type() == "text/html"
    assert invoice.get_content().rstrip() == "<p>Your invoice</p>"
    assert invoice["Reply-To"] == "billing@acme.test"

    news = mail["news"]
    assert news.recipients == ["a@example.test", "b@example.test"]
    assert news.mail_from == "bounces@acme.test"
    assert news.message["From"] == "app@acme.test"

    # and every record says sent, with a sent event, and nothing is left on the queues
    stored = records(api)
    assert {i: r["status"] for i, r in stored.items()} == dict.fromkeys(mail, "sent")
    assert all("sent_ts" in r and "deferred_ts" not in r for r in stored.values())
    assert {i: [e["event_type"] for e in r["history"]] for i, r in stored.items()} == (
        {key: ["sent"] for key in mail}
    )
    assert sum(queue_depths(aws.queues).values()) == 0


@pytest.mark.usefixtures("with_account")
def test_higher_priorities_go_first(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a low priority message submitted before an immediate one
    add_all(api, message("newsletter", priority="low"))
    add_all(api, message("password-reset", priority="immediate"))
    # When one round of polling runs over the queues
    sender.drain(rounds=1)
    # Then the immediate message left first
    assert [r.message["X-Genro-Mail-ID"] for r in smtp_server.received] == [
        "password-reset",
        "newsletter",
    ]


@pytest.mark.usefixtures("with_account")
def test_a_redelivered_record_does_not_send_twice(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a message whose queue record we keep a copy of, delivered once
    add_all(api, message("m1"))
    [record] = receive_all(aws.queues["medium"], hide=False)
    sender.drain()
    assert len(smtp_server.received) == 1
    # When SQS delivers the same record again (at-least-once delivery)
    boto3.client("sqs").send_message(QueueUrl=aws.queues["medium"], MessageBody=record["Body"])
    processed = sender.drain()
    # Then the record is acknowledged and dropped: no second SMTP transaction
    assert processed == 1
    assert len(smtp_server.received) == 1
    assert sum(queue_depths(aws.queues).values()) == 0
    stored = records(api)["m1"]
    assert stored["status"] == "sent"
    assert [e["event_type"] for e in stored["history"]] == ["sent"]


@pytest.mark.usefixtures("with_account")
def test_a_poison_record_fails_alone(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a batch of two good references and two unreadable ones
    add_all(api, message("m1"), message("m2"))
    url = aws.queues["medium"]
    good = receive_all(url)
    assert len(good) == 2
    arn = queue_arn(url)
    event = sqs_event(
        [
            sqs_record(good[0]["Body"], arn, good[0]["ReceiptHandle"], good[0]["MessageId"]),
            sqs_record("{not json", arn, "receipt-poison", "poison-1"),
            sqs_record('{"tenant_id": "acme"}', arn, "receipt-incomplete", "poison-2"),
            sqs_record(good[1]["Body"], arn, good[1]["ReceiptHandle"], good[1]["MessageId"]),
        ]
    )
    # When the sender handles the batch
    response = sender.handler.lambda_handler(event, LambdaContext())
    # Then only the unreadable records are reported failed (SQS retries them, then the DLQ)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "poison-1"}, {"itemIdentifier": "poison-2"}]
    }
    # and the rest of the batch was delivered
    assert sorted(by_mail_id(smtp_server.received)) == ["m1", "m2"]
    assert {r["status"] for r in records(api).values()} == {"sent"}


@pytest.fixture
def refusing_server() -> Iterator[SmtpServer]:
    """A server that does not know the recipient: 550 at RCPT."""
    handler = RecordingHandler(rcpt_replies={"user@example.test": "550 5.1.1 No such user"})
    with SmtpServer(handler) as server:
        yield server


def test_a_550_fails_the_message_at_once(
    api: ApiClient, aws: Any, sender: SenderDriver, refusing_server: SmtpServer
) -> None:
    # Given an account on a server that refuses the recipient
    api.call("POST", "/account", account_for(refusing_server))
    add_all(api, message("m1"))
    # When delivered
    sender.drain()
    # Then the message failed, with the server's reason and code, and is not retried
    stored = records(api)["m1"]
    assert stored["status"] == "error"
    assert stored["error"].endswith("(SMTP 550)")
    assert "No such user" in stored["error"]
    assert "error_ts" in stored
    assert "sent_ts" not in stored
    assert [(e["event_type"], e["description"]) for e in stored["history"]] == [
        ("error", stored["error"])
    ]
    assert refusing_server.received == []
    assert sum(queue_depths(aws.queues).values()) == 0


@pytest.fixture
def greylisting_server() -> Iterator[SmtpServer]:
    """A server that answers 451 after the data: try again later."""
    with SmtpServer(RecordingHandler(data_reply="451 4.7.1 Greylisted, try later")) as server:
        yield server


def test_a_451_defers_the_message_for_a_minute(
    api: ApiClient, aws: Any, sender: SenderDriver, greylisting_server: SmtpServer
) -> None:
    # Given an account on a server that greylists
    api.call("POST", "/account", account_for(greylisting_server))
    add_all(api, message("m1"))
    # When delivered
    before = time.time()
    sender.drain()
    after = time.time()
    # Then the message waits for its first retry, about 60 s ahead
    stored = records(api)["m1"]
    assert stored["status"] == "deferred"
    assert before + 60 - 1 <= stored["deferred_ts"] <= after + 60
    # without being reported as failed
    assert "error" not in stored
    assert "error_ts" not in stored
    # with a deferred event saying why and when
    [event] = stored["history"]
    assert event["event_type"] == "deferred"
    assert event["description"] == "Message refused: 4.7.1 Greylisted, try later (SMTP 451)"
    assert event["metadata"] == {
        "deferred_ts": stored["deferred_ts"],
        "deferred_reason": "Message refused: 4.7.1 Greylisted, try later (SMTP 451)",
        "retry": 1,
    }
    # and a reference for the retry waits, held back, on its queue
    assert queue_depths(aws.queues)["medium"] == 1


def test_recipients_refused_beside_accepted_ones_are_listed_on_the_sent_message(
    api: ApiClient, sender: SenderDriver
) -> None:
    # Given a server that refuses one of three recipients
    handler = RecordingHandler(rcpt_replies={"gone@example.test": "550 5.1.1 No such user"})
    with SmtpServer(handler) as server:
        assert api.call("POST", "/account", account_for(server))[0] == 200
        to = ["a@example.test", "gone@example.test", "b@example.test"]
        assert (
            api.call("POST", "/commands/add-messages", {"messages": [message("m1", to=to)]})[0]
            == 200
        )
        # When it is delivered
        sender.drain()
        # Then the others receive it, and the record says who did not
        [mail] = server.received
        assert sorted(mail.recipients) == ["a@example.test", "b@example.test"]
    [record] = api.call("GET", "/messages")[1]["messages"]
    assert record["status"] == "sent"
    assert record["refused_recipients"] == {"gone@example.test": "550 5.1.1 No such user"}


def test_a_ten_megabyte_message_travels_end_to_end(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer, aws: Any, monkeypatch: Any
) -> None:
    import boto3

    from mailproxy import runtime

    # Given a 10 MB file in a bucket the deployment allows attachments from
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="reports")
    content = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    s3.put_object(Bucket="reports", Key="q3/report.pdf", Body=content)
    monkeypatch.setenv("MAILPROXY_S3_ATTACHMENT_BUCKETS", "reports")
    runtime.reset()
    assert api.call("POST", "/account", account_for(smtp_server))[0] == 200
    # When a message attaching it is submitted and delivered
    attachment = {
        "filename": "report_{MD5:" + "a" * 32 + "}.pdf",
        "storage_path": "s3://reports/q3/report.pdf",
    }
    assert (
        api.call(
            "POST",
            "/commands/add-messages",
            {"messages": [message("big", attachments=[attachment])]},
        )[0]
        == 200
    )
    sender.drain()
    # Then the whole file arrives, under its name without the cache marker
    [mail] = smtp_server.received
    [part] = list(mail.message.iter_attachments())
    assert part.get_filename() == "report.pdf"
    assert part.get_content() == content
    assert len(mail.data) > 10 * 1024 * 1024


class _JsonLines(logging.Handler):
    """The sender's log records as its Powertools formatter writes them to CloudWatch."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.documents: list[dict[str, Any]] = []
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.documents.append(json.loads(self.format(record)))


@pytest.fixture
def sender_log(sender: SenderDriver) -> Iterator[_JsonLines]:
    logger = logging.getLogger("mailproxy-sender")
    capture = _JsonLines(logger.handlers[0].formatter or logging.Formatter())
    logger.addHandler(capture)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)


def test_the_log_says_what_the_original_proxy_says(
    api: ApiClient, sender: SenderDriver, sender_log: _JsonLines
) -> None:
    # Given an account that delivers and one whose server refuses the data
    refusing = SmtpServer(RecordingHandler(data_reply="550 5.1.1 User unknown"))
    with SmtpServer() as good, refusing:
        api.call("POST", "/account", account_for(good, id="smtp-main"))
        api.call("POST", "/account", account_for(refusing, id="bad"))
        add_all(
            api,
            message("msg-001", account_id="smtp-main", to=["user@example.com"]),
            message("msg-002", account_id="bad", to=["gone@example.com"]),
        )
        # When the senders run
        sender.drain()
    # Then the JSON log's message field has the architecture page's words
    said = [(doc["level"], doc["message"]) for doc in sender_log.documents]
    assert ("INFO", "Attempting delivery for message msg-001 to user@example.com") in said
    assert ("INFO", "Delivery succeeded for message msg-001 (account=smtp-main)") in said
    assert ("INFO", "Attempting delivery for message msg-002 to gone@example.com") in said
    failed = [text for level, text in said if level == "WARNING"]
    assert len(failed) == 1
    assert failed[0].startswith("Delivery failed for message msg-002: ")
    assert "550" in failed[0]
