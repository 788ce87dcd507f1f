"""AWS API calls per delivered message on the happy path, through the api and sender Lambdas.

200 messages are submitted 50 per request to an account with one rate-limit window, then
delivered to a local SMTP server; every AWS call the two handlers make is counted with
botocore's event hooks (the SQS receive and delete of the event source mapping are AWS's,
not the Lambda's, and are left out). Also printed: the size of the item a status change
rewrites, beside the size of the message body, since DynamoDB bills writes by item size.

Run: .venv/bin/python bench/aws_calls.py
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "mailproxy" / "python")]

MESSAGES = 200
PER_REQUEST = 50
TARGET = 3.0

calls: Counter[str] = Counter()
_inside = threading.local()


def _count(event_name: str, **_: Any) -> None:
    # event_name: before-call.<service>.<Operation>
    if getattr(_inside, "handler", None):
        _, service, operation = event_name.split(".", 2)
        calls[f"{_inside.handler}: {service}.{operation}"] += 1


def _hook_every_client() -> None:
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call.*.*", _count)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def _counted(name: str, handler: Any) -> Any:
    def invoke(event: dict[str, Any], context: Any) -> Any:
        _inside.handler = name
        try:
            return handler(event, context)
        finally:
            _inside.handler = None

    return invoke


def main() -> int:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        MAILPROXY_ADMIN_TOKEN="bench-token",
        POWERTOOLS_LOG_LEVEL="ERROR",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    _hook_every_client()

    import boto3
    from moto import mock_aws

    from infra.local.events import load_handler
    from infra.local.pollers import poll_once
    from infra.local.provision import provision
    from mailproxy import runtime
    from tests.conftest import ApiClient
    from tests.support.smtp_servers import SmtpServer

    with mock_aws(), SmtpServer() as smtp:
        names = provision(boto3.Session())
        os.environ["MAILPROXY_RESOURCES"] = names.to_json()
        runtime.reset()
        api = ApiClient(_Module(_counted("api", load_handler("api").lambda_handler)), "bench-token")
        sender = _counted("sender", load_handler("sender").lambda_handler)
        account = {
            "id": "main",
            "tenant_id": "bench",
            "host": "127.0.0.1",
            "port": smtp.port,
            "use_tls": False,
            "limit_per_minute": 100_000,
        }
        assert api.call("POST", "/account", account)[0] == 200
        calls.clear()  # the account set-up is not part of a message's cost
        body = "Hello, this is a typical transactional message. " * 20
        for start in range(0, MESSAGES, PER_REQUEST):
            batch = [
                {
                    "id": f"m{n}",
                    "tenant_id": "bench",
                    "account_id": "main",
                    "from": "app@bench.test",
                    "to": [f"user{n}@example.test"],
                    "subject": f"Order {n}",
                    "body": body,
                }
                for n in range(start, start + PER_REQUEST)
            ]
            status, answer = api.call("POST", "/commands/add-messages", {"messages": batch})
            assert status == 200 and answer["queued"] == PER_REQUEST, answer
        sqs = boto3.client("sqs")
        while poll_once(sqs, names.queues["medium"], sender) > 0:
            pass
        delivered = len(smtp.received)
        assert delivered == MESSAGES, delivered

        state, payload = _item_sizes(names.tables["messages"], names.tables["bodies"])

    total = sum(calls.values())
    print(f"{MESSAGES} messages, {PER_REQUEST} per request, one rate-limit window\n")
    print(f"{'calls':>7}  {'per message':>11}  operation")
    for name, count in sorted(calls.items(), key=lambda item: (-item[1], item[0])):
        print(f"{count:>7}  {count / delivered:>11.3f}  {name}")
    print(f"{total:>7}  {total / delivered:>11.3f}  total (target <= {TARGET:.0f})")
    print(f"\nitem a status change rewrites: {state} bytes; message body item: {payload} bytes")
    return 0


class _Module:
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
