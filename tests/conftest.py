"""Fixtures shared by the integration tests: moto for AWS, real SMTP servers, the handlers.
What the tests import (the API client, the sender driver, request bodies) is in
tests/support/handlers.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.events import load_handler
from tests.support.handlers import ADMIN_TOKEN, FAKE_AWS, ApiClient, BouncerInline, SenderDriver
from tests.support.moto_serial import one_request_at_a_time
from tests.support.smtp_servers import SmtpServer


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
        # POST /instance/reload-bounce runs the real bouncer, inline (local mode: in a thread;
        # AWS: an asynchronous invoke), so its effect is there when the call answers.
        runtime.use_bounce_trigger(BouncerInline(load_handler("bouncer")))
        yield names
        runtime.use_bounce_trigger(None)
        runtime.smtp_pool().close_all()
        runtime.reset()


@pytest.fixture
def api(aws: Any) -> ApiClient:
    return ApiClient(load_handler("api"))


@pytest.fixture
def sender(aws: Any) -> SenderDriver:
    return SenderDriver(load_handler("sender"), dict(aws.queues))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
