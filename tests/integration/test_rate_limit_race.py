"""Eight senders at once against one account's limit, over a real (server-mode) DynamoDB
emulation: the conditional counter writes must hold the limit whatever the interleaving."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.events import load_handler
from infra.local.pollers import poll_once
from tests.conftest import ADMIN_TOKEN, FAKE_AWS, ApiClient, account_for, message
from tests.support.smtp_servers import SmtpServer

SENDERS = 8
LIMIT_PER_MINUTE = 20
MESSAGES = 60


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The AWS emulation of local mode, as a server on loopback: requests from many threads
    are real concurrent HTTP calls, not one process's in-memory mock."""
    import boto3

    from infra.local.aws_server import LocalAwsServer
    from infra.local.provision import provision
    from mailproxy import runtime

    server = LocalAwsServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    names = provision(boto3.Session())
    monkeypatch.setenv("MAILPROXY_RESOURCES", names.to_json())
    monkeypatch.setenv("MAILPROXY_ADMIN_TOKEN", ADMIN_TOKEN)
    runtime.reset()
    try:
        yield names
    finally:
        runtime.smtp_pool().close_all()
        runtime.reset()
        server.stop()


def test_eight_concurrent_senders_never_pass_the_per_minute_limit(moto_server: Any) -> None:
    import boto3

    from mailproxy import runtime

    with SmtpServer() as smtp:
        # Given an account limited to 20 messages a minute, and 60 messages for it
        api = ApiClient(load_handler("api"))
        account = account_for(smtp, limit_per_minute=LIMIT_PER_MINUTE)
        assert api.call("POST", "/account", account) == (200, {"ok": True})
        batch = [message(f"m{n:02d}") for n in range(MESSAGES)]
        assert api.call("POST", "/commands/add-messages", {"messages": batch})[0] == 200

        # When eight senders (eight execution environments) drain the queue at once
        queue_url = moto_server.queues["medium"]
        start = threading.Barrier(SENDERS)

        def sender() -> None:
            handler = load_handler("sender")
            sqs = boto3.client("sqs")
            start.wait()
            while poll_once(sqs, queue_url, handler.lambda_handler) > 0:
                pass

        threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)

    # Then no minute saw more than 20 sends, and every message was sent or deferred once
    states = runtime.store().list_states("acme")
    sent_per_minute = Counter(int(s.sent_ts // 60) for s in states if s.sent_ts is not None)
    assert sent_per_minute, "nothing was sent"
    assert max(sent_per_minute.values()) <= LIMIT_PER_MINUTE
    assert len(smtp.received) == sum(sent_per_minute.values())
    by_status = Counter(s.status.value for s in states)
    assert by_status["sent"] + by_status["deferred"] == MESSAGES
    # and each of them reached the server at most once
    delivered = Counter(mail.message["X-Genro-Mail-ID"] for mail in smtp.received)
    assert all(count == 1 for count in delivered.values())
    if len(sent_per_minute) == 1:  # the run stayed within one minute: the limit was reached
        assert sum(sent_per_minute.values()) == LIMIT_PER_MINUTE
