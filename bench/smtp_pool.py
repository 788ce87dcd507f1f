"""SMTP connection reuse: messages per second through one pooled connection, beside a new
connection for every message.

A local aiosmtpd server on 127.0.0.1 stands in for a provider one WAN hop away: it waits
20 ms before its greeting, requires STARTTLS (a trustme certificate) and AUTH. 200 messages
go (a) through one SmtpPool, which keeps its connection, and (b) through a fresh SmtpPool
per message, closed (QUIT) after its send: connect, greeting, EHLO, STARTTLS, EHLO, AUTH
every time. The target is a ratio of at least 10.

Run: .venv/bin/python bench/smtp_pool.py
"""

from __future__ import annotations

import logging
import ssl
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
