"""The sender sends a batch in waves: up to each account's `max_connections` messages at once,
each on a pooled connection of its own, over real SMTP servers that take a round trip for
every reply and count the sessions they serve at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from functions.sender.handler import WAVE_SECONDS
from infra.local.events import LambdaContext, sqs_event, sqs_record
from tests.support.api_calls import add_all, statuses
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import RecordingHandler, SmtpServer
from tests.support.sqs import queue_arn, queue_depths, receive_all

# A provider across the internet, shortened: every reply a round trip away.
REPLY_DELAY = 0.02
POISON = "{this is not json"


@pytest.fixture
def wan_server() -> Iterator[SmtpServer]:
    handler = RecordingHandler(
        rcpt_replies={
            "bounce@example.test": "550 5.1.1 No such user",
            "busy@example.test": "451 4.3.0 Try again later",
        }
    )
    with SmtpServer(handler, reply_delay=REPLY_DELAY) as server:
        yield server


def one_batch(queue_url: str, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The queue's records as one event, as an event source mapping would hand them over."""
    arn = queue_arn(queue_url)
    records = [
        sqs_record(r["Body"], arn, r["ReceiptHandle"], r["MessageId"])
        for r in receive_all(queue_url)
    ]
    return sqs_event(records + (extra or []))


def sent_ids(server: SmtpServer) -> Counter[str]:
    return Counter(str(item.message["X-Genro-Mail-ID"]) for item in server.received)


@dataclass
class ShorteningContext(LambdaContext):
    """A Lambda context whose remaining time is, at each asking, the next of `remaining_ms`
    (then the last one again)."""

    remaining_ms: list[int] = field(default_factory=list)
    asked: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return self.remaining_ms[min(self.asked, len(self.remaining_ms)) - 1]


@pytest.mark.parametrize(("max_connections", "at_least", "at_most"), [(4, 2, 4), (1, 1, 1)])
def test_a_batch_of_ten_goes_out_over_up_to_max_connections_at_once(
    api: ApiClient,
    aws: Any,
    sender: SenderDriver,
    wan_server: SmtpServer,
    max_connections: int,
    at_least: int,
    at_most: int,
) -> None:
    # Given ten messages to one account of `max_connections`
    account = account_for(wan_server, max_connections=max_connections)
    assert api.call("POST", "/account", account) == (200, {"ok": True})
    ids = [f"m{n}" for n in range(10)]
    add_all(api, *(message(i) for i in ids))
    # When the sender handles them as one batch
    response = sender.handler.lambda_handler(one_batch(aws.queues["medium"]), LambdaContext())
    # Then every message went once, no record failed
    assert response == {"batchItemFailures": []}
    assert sent_ids(wan_server) == Counter(ids)
    assert statuses(api) == dict.fromkeys(ids, "sent")
    # and the server served between `at_least` and `at_most` of them at once, on as many
    # connections as the account allows, never more
    assert at_least <= wan_server.most_transactions_at_once <= at_most
    assert wan_server.most_connections_at_once <= max_connections
    assert wan_server.connections == max_connections


def test_mixed_outcomes_of_a_parallel_wave_are_each_its_own(
    api: ApiClient, aws: Any, sender: SenderDriver, wan_server: SmtpServer
) -> None:
    # Given, in one batch: messages to an account of four connections that the server sends,
    # refuses for good and refuses for now; a message to an account whose password cannot
    # be opened (it was sealed for another account); and a record that is not a reference
    for account in (
        account_for(wan_server),
        account_for(wan_server, id="donor", user="u", password="sealed for donor"),
        account_for(wan_server, id="broken", user="u", password="its own"),
    ):
        assert api.call("POST", "/account", account) == (200, {"ok": True})
    accounts = boto3.client("dynamodb")
    donor = accounts.get_item(
        TableName=aws.tables["accounts"], Key={"tenant_id": {"S": "acme"}, "id": {"S": "donor"}}
    )["Item"]
    accounts.update_item(
        TableName=aws.tables["accounts"],
        Key={"tenant_id": {"S": "acme"}, "id": {"S": "broken"}},
        UpdateExpression="SET secret = :s",
        ExpressionAttributeValues={":s": donor["secret"]},
    )
    add_all(
        api,
        message("ok-1"),
        message("bounced", to=["bounce@example.test"]),
        message("ok-2"),
        message("later", to=["busy@example.test"]),
        message("ok-3"),
        message("unsendable", account_id="broken"),
    )
    poison = sqs_record(POISON, queue_arn(aws.queues["medium"]), "receipt-poison", "poison")
    event = one_batch(aws.queues["medium"], [poison])
    unsendable = next(r["messageId"] for r in event["Records"] if "unsendable" in r["body"])
    # When the sender handles the batch
    response = sender.handler.lambda_handler(event, LambdaContext())
    # Then only the records whose handling failed are reported, for the queue to redeliver
    failed = sorted(item["itemIdentifier"] for item in response["batchItemFailures"])
    assert failed == sorted([unsendable, "poison"])
    # and each message has its own outcome: sent, failed for good, deferred for a retry
    assert statuses(api) == {
        "ok-1": "sent",
        "ok-2": "sent",
        "ok-3": "sent",
        "bounced": "error",
        "later": "deferred",
        "unsendable": "pending",
    }
    assert sent_ids(wan_server) == Counter(["ok-1", "ok-2", "ok-3"])
    assert wan_server.most_transactions_at_once >= 2


def test_an_account_limit_holds_within_a_parallel_wave(
    api: ApiClient, aws: Any, sender: SenderDriver, wan_server: SmtpServer
) -> None:
    # Given an account of four connections allowed five messages a minute, and ten messages
    account = account_for(wan_server, limit_per_minute=5)
    assert api.call("POST", "/account", account) == (200, {"ok": True})
    ids = [f"m{n}" for n in range(10)]
    add_all(api, *(message(i) for i in ids))
    # When the sender handles them as one batch
    response = sender.handler.lambda_handler(one_batch(aws.queues["medium"]), LambdaContext())
    # Then five went, the other five wait for the window (in batch order), none failed
    assert response == {"batchItemFailures": []}
    assert sent_ids(wan_server) == Counter(ids[:5])
    assert Counter(statuses(api).values()) == {"sent": 5, "deferred": 5}


def test_a_lost_connection_after_the_data_in_a_parallel_wave_is_never_sent_twice(
    api: ApiClient, aws: Any, sender: SenderDriver
) -> None:
    # Given a server that takes each message and drops its connection unanswered, and four
    # messages to an account of four connections that fails what may have been delivered
    with SmtpServer(drop_after_data=True, reply_delay=REPLY_DELAY) as server:
        account = account_for(server, on_ambiguous="fail")
        assert api.call("POST", "/account", account) == (200, {"ok": True})
        ids = [f"m{n}" for n in range(4)]
        add_all(api, *(message(i) for i in ids))
        # When the sender handles the batch, and then whatever the queues still hold
        response = sender.handler.lambda_handler(one_batch(aws.queues["medium"]), LambdaContext())
        sender.drain()
        received = sent_ids(server)
    # Then each reached the server once, side by side, and is failed as uncertain, not resent
    assert response == {"batchItemFailures": []}
    assert received == Counter(ids)
    assert server.most_transactions_at_once >= 2
    assert statuses(api) == dict.fromkeys(ids, "error")


def test_a_wave_starts_only_with_time_left_for_it_and_the_rest_waits_for_the_next_run(
    api: ApiClient, aws: Any, sender: SenderDriver, wan_server: SmtpServer
) -> None:
    # Given ten messages to an account of four connections, and an invocation that has time
    # for its first wave only
    assert api.call("POST", "/account", account_for(wan_server)) == (200, {"ok": True})
    ids = [f"m{n}" for n in range(10)]
    add_all(api, *(message(i) for i in ids))
    short = ShorteningContext(remaining_ms=[60_000, WAVE_SECONDS * 1000 - 1])
    # When the sender handles them as one batch
    response = sender.handler.lambda_handler(one_batch(aws.queues["medium"]), short)
    # Then the first wave went; the other six were queued again, untouched, no record failed
    assert response == {"batchItemFailures": []}
    assert sent_ids(wan_server) == Counter(ids[:4])
    assert statuses(api) == dict.fromkeys(ids[:4], "sent") | dict.fromkeys(ids[4:], "pending")
    assert queue_depths(aws.queues)["medium"] == 6
    # When the next invocations run / Then the six go too, each once
    sender.drain()
    assert sent_ids(wan_server) == Counter(ids)
    assert statuses(api) == dict.fromkeys(ids, "sent")
