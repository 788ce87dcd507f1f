"""Driving the Lambda handlers in-process, for the integration tests: the environment they
get (FAKE_AWS, ADMIN_TOKEN), an API client that turns calls into API Gateway events, a driver
that runs the sender over what the queues hold, and the request bodies the tests post.
The fixtures that build them on moto are in tests/conftest.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from infra.local.events import LambdaContext, http_event, response_json
from tests.support.smtp_servers import SmtpServer

ADMIN_TOKEN = "test-admin-token"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_METRICS_NAMESPACE": "MailProxyTest",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@dataclass
class ApiClient:
    """Calls the api handler with the API Gateway event an HTTP request would become."""

    handler: Any
    token: str | None = ADMIN_TOKEN

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: str = "",
        token: str | object | None = ...,
        raw_body: str | None = None,
    ) -> tuple[int, Any]:
        headers = {"content-type": "application/json"}
        chosen = self.token if token is ... else token
        if chosen is not None:
            headers["X-API-Token"] = str(chosen)
        payload = (
            raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        )
        event = http_event(method, path, query=query, headers=headers, body=payload)
        response = self.handler.lambda_handler(event, LambdaContext())
        return response["statusCode"], response_json(response)


@dataclass
class BouncerInline:
    """The bounce trigger of the tests: the bouncer's handler, run before the call answers."""

    handler: Any

    def trigger(self) -> None:
        from mailproxy.bounce_trigger import RELOAD_EVENT

        self.handler.lambda_handler(dict(RELOAD_EVENT), LambdaContext(function_name="bouncer"))


@dataclass
class SenderDriver:
    """Runs the sender handler over what the queues hold, as the event source mappings do."""

    handler: Any
    queue_urls: dict[str, str]

    def drain(self, rounds: int = 20) -> int:
        import boto3

        from infra.local.pollers import poll_once

        sqs = boto3.client("sqs")
        total = 0
        for _ in range(rounds):
            got = sum(
                poll_once(sqs, self.queue_urls[label], self.handler.lambda_handler)
                for label in ("immediate", "high", "medium", "low")
            )
            if got == 0:
                break
            total += got
        return total


def account_for(server: SmtpServer, **overrides: Any) -> dict[str, Any]:
    return {
        "id": "main",
        "tenant_id": "acme",
        "host": "127.0.0.1",
        "port": server.port,
        "use_tls": False,
    } | overrides


def message(id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": id,
        "tenant_id": "acme",
        "account_id": "main",
        "from": "app@acme.test",
        "to": ["user@example.test"],
        "subject": f"Subject {id}",
        "body": f"Body of {id}",
    } | overrides
