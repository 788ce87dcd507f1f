"""The sender writes a batch together: one transaction claims its messages (with their
rate-limit slots), one writes their outcomes; what a batch write cannot do is done per
message, so one message that changed meanwhile never holds up the rest."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from botocore.client import BaseClient

from infra.local.events import LambdaContext, sqs_event, sqs_record
from tests.support.api_calls import add_all, statuses
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import RecordingHandler, SmtpServer
from tests.support.sqs import queue_arn, receive_all


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every AWS API call made from here on, by operation (PynamoDB's included)."""
    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counting(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        calls[operation] += 1
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return calls


def invoke_with(sender: SenderDriver, queue_url: str, bodies: list[str]) -> dict[str, Any]:
    """One invocation over these record bodies, as the event source mapping makes it."""
    arn = queue_arn(queue_url)
    event = sqs_event(
        [sqs_record(body, arn, f"handle-{n}", f"record-{n}") for n, body in enumerate(bodies)]
    )
    return dict(sender.handler.lambda_handler(event, LambdaContext()))


def test_a_batch_of_ten_is_claimed_in_one_transaction_and_finished_in_another(
    api: ApiClient,
    aws: Any,
    sender: SenderDriver,
    smtp_server: SmtpServer,
    aws_calls: Counter[str],
) -> None:
    # Given an account limited per minute and ten messages queued for it
    account = account_for(smtp_server, limit_per_minute=100)
    assert api.call("POST", "/account", account) == (200, {"ok": True})
    add_all(api, *(message(f"m{n}") for n in range(10)))
    bodies = [record["Body"] for record in receive_all(aws.queues["medium"])]
    assert len(bodies) == 10

    # When one invocation delivers the ten
    aws_calls.clear()
    response = invoke_with(sender, aws.queues["medium"], bodies)

    # Then each went once, each is recorded sent, and two transactions did all the writing
    assert response == {"batchItemFailures": []}
    assert sorted(str(mail.message["X-Genro-Mail-ID"]) for mail in smtp_server.received) == sorted(
        f"m{n}" for n in range(10)
    )
    assert set(statuses(api).values()) == {"sent"}
    assert aws_calls["TransactWriteItems"] == 2


def test_a_reference_that_is_no_longer_live_does_not_hold_up_its_batch(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given five queued messages, and an old reference to one of them whose ticket has
    # since moved on (a stale record SQS delivers again)
    assert api.call("POST", "/account", account_for(smtp_server)) == (200, {"ok": True})
    add_all(api, *(message(f"m{n}") for n in range(5)))
    bodies = [record["Body"] for record in receive_all(aws.queues["medium"])]
    stale = json.loads(bodies[2])
    stale["ticket"] = "an-old-ticket"
    # (the stale one first: the batch's claim fails on it, and is made again without it)
    batch = [json.dumps(stale), *bodies]

    # When one invocation gets them all
    response = invoke_with(sender, aws.queues["medium"], batch)

    # Then the five went, each once, and the stale record was acknowledged and dropped
    assert response == {"batchItemFailures": []}
    sent = Counter(str(mail.message["X-Genro-Mail-ID"]) for mail in smtp_server.received)
    assert sent == {f"m{n}": 1 for n in range(5)}
    assert set(statuses(api).values()) == {"sent"}


def test_the_same_record_twice_in_a_batch_is_sent_once(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a message whose queue record arrives twice in one batch (at-least-once delivery)
    assert api.call("POST", "/account", account_for(smtp_server)) == (200, {"ok": True})
    add_all(api, message("m1"), message("m2"))
    bodies = [record["Body"] for record in receive_all(aws.queues["medium"])]

    # When one invocation gets both copies and the other message
    response = invoke_with(sender, aws.queues["medium"], [bodies[0], bodies[0], bodies[1]])

    # Then each message went once
    assert response == {"batchItemFailures": []}
    sent = Counter(str(mail.message["X-Genro-Mail-ID"]) for mail in smtp_server.received)
    assert sent == {"m1": 1, "m2": 1}
    assert set(statuses(api).values()) == {"sent"}


def test_a_batch_over_its_accounts_limit_sends_what_fits_and_defers_the_rest(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given an account allowed four sends a minute, and ten messages for it
    account = account_for(smtp_server, limit_per_minute=4)
    assert api.call("POST", "/account", account) == (200, {"ok": True})
    add_all(api, *(message(f"m{n}") for n in range(10)))
    bodies = [record["Body"] for record in receive_all(aws.queues["medium"])]

    # When one invocation gets the ten
    response = invoke_with(sender, aws.queues["medium"], bodies)

    # Then four went and six wait for the window, none lost
    assert response == {"batchItemFailures": []}
    assert len(smtp_server.received) == 4
    assert Counter(statuses(api).values()) == {"sent": 4, "deferred": 6}

    # And the window's stored count holds all four: a later invocation sends nothing more
    add_all(api, message("late"))
    [late] = [record["Body"] for record in receive_all(aws.queues["medium"])]
    invoke_with(sender, aws.queues["medium"], [late])
    assert len(smtp_server.received) == 4
    assert statuses(api)["late"] == "deferred"


class _ShortOnTime(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 20_000  # less than one send may take


def test_an_invocation_short_on_time_gives_its_claims_back_and_they_go_later(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given three messages claimed by an invocation with too little time left to send them
    assert api.call("POST", "/account", account_for(smtp_server, limit_per_minute=3)) == (
        200,
        {"ok": True},
    )
    add_all(api, *(message(f"m{n}") for n in range(3)))
    bodies = [record["Body"] for record in receive_all(aws.queues["medium"])]
    arn = queue_arn(aws.queues["medium"])
    event = sqs_event([sqs_record(b, arn, f"h{n}", f"r{n}") for n, b in enumerate(bodies)])

    # When it runs
    response = sender.handler.lambda_handler(event, _ShortOnTime())

    # Then nothing was sent, nothing failed, and the three wait again, their slots given back
    assert response == {"batchItemFailures": []}
    assert smtp_server.received == []
    assert set(statuses(api).values()) == {"pending"}
    # And a later invocation sends each of them once
    sender.drain()
    sent = Counter(str(mail.message["X-Genro-Mail-ID"]) for mail in smtp_server.received)
    assert sent == {"m0": 1, "m1": 1, "m2": 1}
    assert set(statuses(api).values()) == {"sent"}


def test_a_next_reference_is_queued_only_once_its_ticket_is_written(
    api: ApiClient, aws: Any, sender: SenderDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an account whose server says 451 (each message is retried), and every reference
    # checked against the store at the moment it is queued
    from mailproxy import runtime
    from mailproxy.queueing import SqsQueues

    seen: list[tuple[str, str, str | None]] = []
    original = SqsQueues.send

    def checking(self: SqsQueues, items: Any) -> None:
        items = list(items)
        for item in items:
            state = runtime.store().get_state(item.reference.tenant_id, item.reference.message_id)
            live = state.ticket if state is not None else None
            seen.append((item.reference.message_id, item.reference.ticket, live))
        original(self, items)

    with SmtpServer(RecordingHandler(data_reply="451 4.7.1 Greylisted, try later")) as server:
        assert api.call("POST", "/account", account_for(server)) == (200, {"ok": True})
        add_all(api, *(message(f"m{n}") for n in range(3)))
        monkeypatch.setattr(SqsQueues, "send", checking)

        # When the sender tries them (each is deferred for a retry)
        sender.drain(rounds=1)

    # Then each retry's reference was queued after the message took its ticket, never before
    # (a sender that got it first would have dropped it as stale)
    assert sorted(message_id for message_id, _, _ in seen) == ["m0", "m1", "m2"]
    assert all(ticket == live for _, ticket, live in seen), seen
    assert set(statuses(api).values()) == {"deferred"}
