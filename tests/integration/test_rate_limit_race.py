"""Eight senders at once against one account's limit, over a real (server-mode) DynamoDB
emulation: the conditional window writes must hold the limit over every 60 s span of the
send times, whatever the interleaving, and a burst just before a minute boundary must not
get the limit twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from infra.local.events import load_handler
from infra.local.pollers import poll_once
from tests.support.handlers import ADMIN_TOKEN, FAKE_AWS, ApiClient, account_for, message
from tests.support.smtp_servers import SmtpServer

SENDERS = 8
LIMIT_PER_MINUTE = 20
MESSAGES = 60
# The senders' clock starts at 03:33:58 UTC, two seconds before a minute boundary.
START = 2_000_000_038.0


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


class SharedClock:
    """The clock of every sender thread, held by the test: it stands still but for a
    millisecond at each reading (sends keep an order), and moves when the test moves it."""

    def __init__(self, now: float) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            now = self._now
            self._now += 0.001
            return now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now


def most_in_any_span(times: list[float], length: float) -> int:
    """The most of these times any span [t, t + length) holds (a span starting at one of
    them is as full as any)."""
    return max(sum(1 for other in times if start <= other < start + length) for start in times)


def test_eight_concurrent_senders_never_pass_the_limit_in_any_minute(
    moto_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from mailproxy import runtime
    from mailproxy.domain.status import WAITING_STATUSES
    from mailproxy.queueing import Enqueue, Reference

    clock = SharedClock(START)
    monkeypatch.setattr(runtime, "clock", clock)
    queue_url = moto_server.queues["medium"]
    # Eight execution environments, each warm across the rounds below.
    handlers = [load_handler("sender") for _ in range(SENDERS)]

    def drain_concurrently() -> None:
        start = threading.Barrier(SENDERS)

        def sender(handler: ModuleType) -> None:
            sqs = boto3.client("sqs")
            start.wait()
            while poll_once(sqs, queue_url, handler.lambda_handler) > 0:
                pass

        threads = [threading.Thread(target=sender, args=(h,)) for h in handlers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)

    def waiting() -> list[Any]:
        states = runtime.store().list_states("acme")
        return [s for s in states if s.status in WAITING_STATUSES]

    def sent_count() -> int:
        return sum(1 for s in runtime.store().list_states("acme") if s.sent_ts is not None)

    def come_back(states: list[Any]) -> None:
        """Their live references arrive now (the test does not wait for SQS's delays)."""
        runtime.queues().send(
            [
                Enqueue(Reference("acme", s.id, s.ticket, s.account_id, s.priority, s.retries))
                for s in states
            ]
        )

    with SmtpServer() as smtp:
        # Given an account limited to 20 messages a minute, and 60 messages for it
        api = ApiClient(load_handler("api"))
        account = account_for(smtp, limit_per_minute=LIMIT_PER_MINUTE)
        assert api.call("POST", "/account", account) == (200, {"ok": True})
        batch = [message(f"m{n:02d}") for n in range(MESSAGES)]
        assert api.call("POST", "/commands/add-messages", {"messages": batch})[0] == 200
        sent_per_round: list[int] = []

        # When eight senders drain the queue at once, at 03:33:58
        clock.set(START)
        drain_concurrently()
        sent_per_round.append(sent_count())
        # and the deferred messages come back at 03:34:00, as the minute turns
        clock.set(START + 2)
        come_back(waiting())
        drain_concurrently()
        sent_per_round.append(sent_count() - sum(sent_per_round))
        # and from then on each time the first of them is due, until all are sent
        for _ in range(5):
            left = waiting()
            if not left:
                break
            due = min(s.deferred_ts for s in left if s.deferred_ts is not None)
            clock.set(due)
            come_back([s for s in left if s.deferred_ts is None or s.deferred_ts <= due])
            drain_concurrently()
            sent_per_round.append(sent_count() - sum(sent_per_round))

    states = runtime.store().list_states("acme")
    sent_ts = [s.sent_ts for s in states if s.sent_ts is not None]
    # Then every message was sent, and each reached the server once
    assert len(sent_ts) == MESSAGES
    delivered = Counter(mail.message["X-Genro-Mail-ID"] for mail in smtp.received)
    assert len(delivered) == MESSAGES
    assert all(count == 1 for count in delivered.values())
    # and no 60 s span, wherever it starts, held more than 20 sends (it held 20: the senders
    # used the limit)
    assert most_in_any_span(sent_ts, 60) == LIMIT_PER_MINUTE
    # and the new minute at 03:34:00 let nothing more go, while each time a slot freed up
    # (03:35:00, then 03:36:05), the next 20 went
    assert sent_per_round == [20, 0, 20, 20]
