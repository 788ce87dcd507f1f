"""SMTP connection reuse: messages per second through one pooled connection, beside a new
connection for every message.

A local aiosmtpd server on 127.0.0.1 stands in for a provider one WAN hop away: it waits
20 ms before its greeting, requires STARTTLS (a trustme certificate) and AUTH. 200 messages
go (a) through one SmtpPool, which keeps its connection, and (b) through a fresh SmtpPool
per message, closed (QUIT) after its send: connect, greeting, EHLO, STARTTLS, EHLO, AUTH
every time. The target is a ratio of at least 10.

Then the sender itself (its Lambda handler, on moto) against a server 50 ms away from every
reply, a real provider across the internet: 200 messages, received 10 per batch as an event
source mapping hands them over, (c) one at a time (an account of max_connections 1) and
(d) in waves of the default 4 connections. Printed: messages per second end to end, the
sender's milliseconds per message (its invocations' time over the messages), connections
opened, and the most SMTP transactions the server saw at once.

Run: .venv/bin/python bench/smtp_pool.py
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import ssl
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support (the package itself is installed)

from mailproxy.delivery.smtp_pool import SmtpPool  # noqa: E402
from mailproxy.domain.account import Account, TlsMode  # noqa: E402
from tests.support.smtp_servers import SmtpServer  # noqa: E402

MESSAGES = 200
GREETING_DELAY_SECONDS = 0.020
SENDER = "bench@acme.test"
RECIPIENTS = ["user@example.test"]
TARGET_RATIO = 10.0
REPLY_DELAY_SECONDS = 0.050
BATCH = 10  # records per sender invocation, as an SQS event source mapping delivers them


def message(n: int) -> bytes:
    body = "A line of an ordinary transactional email, repeated to give it some size.\r\n" * 40
    return (
        f"From: {SENDER}\r\nTo: {RECIPIENTS[0]}\r\nSubject: bench {n}\r\n"
        f"Message-ID: <bench-{n}@acme.test>\r\n\r\n{body}"
    ).encode()


def timed(send: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for n in range(MESSAGES):
        send(n)
    return time.perf_counter() - start


def main() -> int:
    # The server takes AUTH before STARTTLS too (the client does STARTTLS first anyway);
    # aiosmtpd's warnings about that, and its per-session log lines, are not the numbers.
    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)

    def client_context() -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        return context

    with SmtpServer(
        credentials=("bench", "bench-password"),
        tls_context=server_context,
        greeting_delay=GREETING_DELAY_SECONDS,
    ) as server:
        account = Account(
            id="bench",
            tenant_id="bench",
            host="127.0.0.1",
            port=server.port,
            user="bench",
            password=SecretStr("bench-password"),
            use_tls=True,
        )
        assert account.tls_mode is TlsMode.STARTTLS

        pool = SmtpPool(ssl_context=client_context)

        def pooled(n: int) -> None:
            pool.send(account, SENDER, RECIPIENTS, message(n))

        opened: list[int] = []

        def fresh(n: int) -> None:
            own = SmtpPool(ssl_context=client_context)
            try:
                own.send(account, SENDER, RECIPIENTS, message(n))
            finally:
                own.close_all()
            opened.append(own.connections_opened)

        pooled_seconds = timed(pooled)
        pool.close_all()
        pooled_connections = pool.connections_opened
        fresh_seconds = timed(fresh)
        started = time.perf_counter()
        for _ in range(MESSAGES):
            client_context()
        context_seconds = time.perf_counter() - started
        delivered = len(server.handler.wait_for(2 * MESSAGES, timeout=10))

    pooled_rate = MESSAGES / pooled_seconds
    fresh_rate = MESSAGES / fresh_seconds
    ratio = pooled_rate / fresh_rate
    print(
        f"{MESSAGES} messages each way, STARTTLS + AUTH, "
        f"{GREETING_DELAY_SECONDS * 1000:.0f} ms before the greeting"
    )
    print(f"{'':<28}{'msg/s':>10}{'ms/msg':>10}{'connections':>13}")
    print(
        f"{'(a) pooled connection':<28}{pooled_rate:>10.1f}"
        f"{pooled_seconds / MESSAGES * 1000:>10.2f}{pooled_connections:>13}"
    )
    print(
        f"{'(b) new connection each':<28}{fresh_rate:>10.1f}"
        f"{fresh_seconds / MESSAGES * 1000:>10.2f}{sum(opened):>13}"
    )
    print(
        f"    of which building the client's SSLContext: "
        f"{context_seconds / MESSAGES * 1000:.2f} ms per connection"
    )
    print(f"\nratio {ratio:.1f} (target >= {TARGET_RATIO:.0f}); delivered {delivered}")
    sender_waves()
    return 0


@dataclass(frozen=True)
class WaveCase:
    label: str
    max_connections: int
    reply_delay: float


WAVE_CASES = (
    WaveCase("(c) sequential (max_connections 1)", 1, REPLY_DELAY_SECONDS),
    WaveCase("(d) parallel (max_connections 4)", 4, REPLY_DELAY_SECONDS),
    # What a message costs the sender without SMTP waits: the rest of (c) and (d) is waiting.
    WaveCase("(e) no reply delay, sequential", 1, 0.0),
)


@dataclass
class WaveFigures:
    seconds: float
    sender_seconds: float
    connections: int
    most_at_once: int


def sender_waves() -> None:
    """(c), (d), (e): the sender handler over batches of 10."""
    import aws_calls  # bench/ is this script's folder

    aws_calls.set_up_environment()
    import boto3
    from moto import mock_aws

    from infra.local import moto_patches
    from infra.local.events import load_handler
    from infra.local.pollers import poll_once
    from infra.local.provision import provision
    from mailproxy import runtime
    from tests.support.handlers import ApiClient
    from tests.support.moto_serial import one_request_at_a_time

    moto_patches.install()  # as local mode and the tests run it: a call costs what it touches
    figures: dict[WaveCase, WaveFigures] = {}
    # The handlers' EMF metric lines go to stdout: not the numbers.
    with mock_aws(), one_request_at_a_time(), contextlib.redirect_stdout(io.StringIO()):
        names = provision(boto3.Session())
        os.environ["MAILPROXY_RESOURCES"] = names.to_json()
        runtime.reset()
        api = ApiClient(aws_calls.Module(load_handler("api").lambda_handler), "bench-token")
        handler = load_handler("sender").lambda_handler
        sqs = boto3.client("sqs")
        queue = names.queues["medium"]
        in_sender = [0.0]

        def timed_sender(event: dict[str, Any], context: Any) -> Any:
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                in_sender[0] += time.perf_counter() - started

        for number, case in enumerate(WAVE_CASES):
            with SmtpServer(reply_delay=case.reply_delay) as server:
                account = aws_calls.account_for(server, max_connections=case.max_connections)
                assert api.call("POST", "/account", account)[0] == 200
                aws_calls.submit(api, MESSAGES, prefix=f"case{number}-")
                in_sender[0] = 0.0
                started = time.perf_counter()
                while poll_once(sqs, queue, timed_sender) > 0:
                    pass
                seconds = time.perf_counter() - started
                delivered = len(server.handler.wait_for(MESSAGES, timeout=10))
                assert delivered == MESSAGES, delivered
                runtime.smtp_pool().close_all()
                figures[case] = WaveFigures(
                    seconds, in_sender[0], server.connections, server.most_transactions_at_once
                )
    print(
        f"\nthe sender over a server {REPLY_DELAY_SECONDS * 1000:.0f} ms from every reply: "
        f"{MESSAGES} messages, {BATCH} per invocation (AWS on moto, one request at a time)"
    )
    print(f"{'':<36}{'msg/s':>8}{'sender ms/msg':>15}{'connections':>13}{'at once':>9}")
    for case, found in figures.items():
        print(
            f"{case.label:<36}{MESSAGES / found.seconds:>8.1f}"
            f"{found.sender_seconds / MESSAGES * 1000:>15.1f}"
            f"{found.connections:>13}{found.most_at_once:>9}"
        )
    sequential, parallel, no_wait = (figures[case].sender_seconds for case in WAVE_CASES)
    print(
        f"\nsender time per message, sequential over parallel: {sequential / parallel:.1f}; "
        f"its SMTP wait alone (less (e)): {(sequential - no_wait) / MESSAGES * 1000:.0f} vs "
        f"{(parallel - no_wait) / MESSAGES * 1000:.0f} ms, "
        f"{(sequential - no_wait) / max(parallel - no_wait, 1e-9):.1f} times less"
    )


if __name__ == "__main__":
    sys.exit(main())
