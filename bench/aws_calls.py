"""AWS API calls per delivered message on the happy path, through the api and sender Lambdas.

200 messages are submitted 50 per request to an account with one rate-limit window, then
delivered to a local SMTP server; every AWS call the two handlers make is counted with
botocore's event hooks (the SQS receive and delete of the event source mapping are AWS's,
not the Lambda's, and are left out). Also printed: the size of the item a status change
rewrites, beside the size of the message body, since DynamoDB bills writes by item size.

Run: .venv/bin/python bench/aws_calls.py

bench/cost.py runs the same path and prices it; the helpers it shares are the public names here.
"""

from __future__ import annotations

import contextvars
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "mailproxy" / "python")]

MESSAGES = 200
PER_REQUEST = 50
TARGET = 1.0

calls: Counter[str] = Counter()
# The invocation a call is made in: a context variable, which the sender's wave threads
# inherit (each runs in a copy of the invocation's context).
_inside: contextvars.ContextVar[str | None] = contextvars.ContextVar("handler", default=None)


def _count(event_name: str, **_: Any) -> None:
    # event_name: before-call.<service>.<Operation>
    handler = _inside.get()
    if handler:
        _, service, operation = event_name.split(".", 2)
        calls[f"{handler}: {service}.{operation}"] += 1


def current_handler() -> str | None:
    """The name `counted` gave the invocation running in this thread (None: outside one)."""
    return _inside.get()


def hook_every_client(*hooks: tuple[str, Callable[..., None]]) -> None:
    """Every botocore client created from now on calls `_count` (and `hooks`, as pairs of
    event name and handler) on each API call: PynamoDB's clients included."""
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        for event_name, hook in (("before-call.*.*", _count), *hooks):
            client.meta.events.register(event_name, hook)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def counted(name: str, handler: Any) -> Any:
    """`handler`, whose AWS calls are counted under `name`; nested, the outer name comes back
    afterwards (an event source mapping around the handler it invokes)."""

    def invoke(event: dict[str, Any], context: Any) -> Any:
        token = _inside.set(name)
        try:
            return handler(event, context)
        finally:
            _inside.reset(token)

    return invoke


def set_up_environment(log_level: str = "ERROR") -> None:
    """Fake credentials, moto's region, the admin token; call before importing boto3."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        MAILPROXY_ADMIN_TOKEN="bench-token",
        POWERTOOLS_LOG_LEVEL=log_level,
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


def account_for(smtp: Any, **extra: Any) -> dict[str, Any]:
    """The one account of the bench: one rate-limit window, high enough never to defer."""
    return {
        "id": "main",
        "tenant_id": "bench",
        "host": "127.0.0.1",
        "port": smtp.port,
        "use_tls": False,
        "limit_per_minute": 100_000,
        **extra,
    }


def submit(api: Any, messages: int, per_request: int = PER_REQUEST, prefix: str = "m") -> None:
    """`messages` typical transactional messages (a 1 KB body), `per_request` per call, with
    ids `prefix` + n."""
    body = "Hello, this is a typical transactional message. " * 20
    for start in range(0, messages, per_request):
        batch = [
            {
                "id": f"{prefix}{n}",
                "tenant_id": "bench",
                "account_id": "main",
                "from": "app@bench.test",
                "to": [f"user{n}@example.test"],
                "subject": f"Order {n}",
                "body": body,
            }
            for n in range(start, min(start + per_request, messages))
        ]
        status, answer = api.call("POST", "/commands/add-messages", {"messages": batch})
        assert status == 200 and answer["queued"] == len(batch), answer


def drain(sqs: Any, queue_url: str, sender: Any, poll: Any = None) -> None:
    """Invoke `sender` as the event source mapping does, until the queue is empty."""
    from infra.local.pollers import poll_once

    poll = poll or poll_once
    while poll(sqs, queue_url, sender) > 0:
        pass


def main() -> int:
    set_up_environment()
    hook_every_client()

    import boto3
    from moto import mock_aws

    from infra.local.events import load_handler
    from infra.local.provision import provision
    from mailproxy import runtime
    from tests.support.handlers import ApiClient
    from tests.support.moto_serial import one_request_at_a_time
    from tests.support.smtp_servers import SmtpServer

    with mock_aws(), one_request_at_a_time(), SmtpServer() as smtp:
        names = provision(boto3.Session())
        os.environ["MAILPROXY_RESOURCES"] = names.to_json()
        runtime.reset()
        api = ApiClient(Module(counted("api", load_handler("api").lambda_handler)), "bench-token")
        sender = counted("sender", load_handler("sender").lambda_handler)
        assert api.call("POST", "/account", account_for(smtp))[0] == 200
        calls.clear()  # the account set-up is not part of a message's cost
        submit(api, MESSAGES)
        drain(boto3.client("sqs"), names.queues["medium"], sender)
        delivered = len(smtp.received)
        assert delivered == MESSAGES, delivered

        state, payload = _item_sizes(names.tables["messages"], names.tables["bodies"])

    total = sum(calls.values())
    print(f"{MESSAGES} messages, {PER_REQUEST} per request, one rate-limit window\n")
    print(f"{'calls':>7}  {'per message':>11}  operation")
    for name, count in sorted(calls.items(), key=lambda item: (-item[1], item[0])):
        print(f"{count:>7}  {count / delivered:>11.3f}  {name}")
    print(f"{total:>7}  {total / delivered:>11.3f}  total (target <= {TARGET:.1f})")
    print(f"\nitem a status change rewrites: {state} bytes; message body item: {payload} bytes")
    return 0


class Module:
    """What ApiClient expects of a handler module."""

    def __init__(self, lambda_handler: Any) -> None:
        self.lambda_handler = lambda_handler


def _item_sizes(messages_table: str, bodies_table: str) -> tuple[int, int]:
    """Approximate DynamoDB item sizes (attribute names and values, as billed)."""
    import boto3

    dynamodb = boto3.client("dynamodb")
    key = {"tenant_id": {"S": "bench"}, "id": {"S": "m0"}}
    state = dynamodb.get_item(TableName=messages_table, Key=key)["Item"]
    body = dynamodb.get_item(TableName=bodies_table, Key=key)["Item"]
    return _size(state), _size(body)


def _size(item: dict[str, Any]) -> int:
    import json

    return sum(len(name) + len(json.dumps(value)) for name, value in item.items())


if __name__ == "__main__":
    sys.exit(main())
