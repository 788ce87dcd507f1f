"""Fixtures shared by the integration tests: moto for AWS, real SMTP servers, the handlers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra.local.events import LambdaContext, http_event, load_handler, response_json
from tests.support.moto_serial import one_request_at_a_time
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


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh moto account with every resource of infra/resources.py, and the environment a
    Lambda would get for it."""
    import boto3
    from moto import mock_aws

    from infra.local import moto_patches
    from infra.local.provision import provision
    from mailproxy import runtime

    # The suite runs on the emulation local mode runs on.
    moto_patches.install()
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # A deployment's own setting, never inherited from the shell running the tests.
    monkeypatch.delenv("MAILPROXY_PUBLIC_BASE_URL", raising=False)
    # A sender's wave calls moto from several threads: one request at a time, as local mode.
    with mock_aws(), one_request_at_a_time():
        names = provision(boto3.Session())
        monkeypatch.setenv("MAILPROXY_RESOURCES", names.to_json())
        monkeypatch.setenv("MAILPROXY_ADMIN_TOKEN", ADMIN_TOKEN)
        runtime.reset()
        yield names
        runtime.smtp_pool().close_all()
        runtime.reset()


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


@pytest.fixture
def api(aws: Any) -> ApiClient:
    return ApiClient(load_handler("api"))


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


@pytest.fixture
def sender(aws: Any) -> SenderDriver:
    return SenderDriver(load_handler("sender"), dict(aws.queues))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


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


os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
