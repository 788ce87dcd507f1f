"""The SMTP pool against real SMTP servers (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from mailproxy.delivery.smtp_pool import SmtpPool
from mailproxy.domain.account import Account
from mailproxy.domain.errors import DeliveryError
from tests.support.smtp_servers import RecordingHandler, SmtpServer, free_port

SENDER = "app@acme.test"

# The test servers take AUTH without TLS on purpose (the TLS cases require STARTTLS anyway).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def account(server: SmtpServer | None = None, **overrides: Any) -> Account:
    fields: dict[str, Any] = {
        "id": "main",
        "tenant_id": "acme",
        "host": "127.0.0.1",
        "port": server.port if server is not None else free_port(),
        "use_tls": False,
    }
    return Account.model_validate(fields | overrides)


def mail(subject: str, body: str = "Hello") -> bytes:
    return (
        f"From: {SENDER}\r\nTo: user@example.test\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture
def pool() -> Iterator[SmtpPool]:
    pool = SmtpPool()
    yield pool
    pool.close_all()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    """A server that requires STARTTLS, with a certificate for 127.0.0.1, and AUTH."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    with SmtpServer(credentials=("alice", "wonderland"), tls_context=server_context) as server:
        yield server


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_one_connection_serves_several_messages(pool: SmtpPool, smtp_server: SmtpServer) -> None:
    # Given an account with the default ttl / When three messages are sent one after another
    for n in range(3):
        refused = pool.send(account(smtp_server), SENDER, ["user@example.test"], mail(f"n{n}"))
        assert refused == {}
    # Then all arrive, over one connection
    received = smtp_server.handler.wait_for(3)
    assert [r.message["Subject"] for r in received] == ["n0", "n1", "n2"]
    assert pool.connections_opened == 1


def test_a_ttl_of_zero_opens_a_connection_per_message(
    pool: SmtpPool, smtp_server: SmtpServer
) -> None:
    for n in range(2):
        pool.send(account(smtp_server, ttl=0), SENDER, ["user@example.test"], mail(f"n{n}"))
    assert len(smtp_server.handler.wait_for(2)) == 2
    assert pool.connections_opened == 2


def test_a_pooled_connection_the_server_dropped_is_replaced(pool: SmtpPool) -> None:
    # Given a pooled connection to a server that has since restarted (and dropped it)
    with SmtpServer() as first:
        port = first.port
        pool.send(account(first), SENDER, ["user@example.test"], mail("before"))
    restarted = RecordingHandler()
    controller = Controller(restarted, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # When the next message is sent
        refused = pool.send(account(port=port), SENDER, ["user@example.test"], mail("after"))
        received = restarted.wait_for(1)
    finally:
        controller.stop()
    # Then it goes out over a fresh connection, without an error
    assert refused == {}
    assert [r.message["Subject"] for r in received] == ["after"]
    assert pool.connections_opened == 2


def test_the_message_arrives_as_it_was_given(pool: SmtpPool, smtp_server: SmtpServer) -> None:
    # Given a body with a line starting with a dot and bare LF line ends / When sent
    body = "first line\n.hidden dot line\n..two dots\nlast"
    pool.send(account(smtp_server), SENDER, ["user@example.test"], mail("dots", body))
    # Then the server gets the same lines (dot-stuffing is undone on the other side)
    received = smtp_server.handler.wait_for(1)[0]
    assert received.mail_from == SENDER
    assert received.recipients == ["user@example.test"]
    assert received.message.get_content().splitlines() == body.split("\n")


def test_starttls_and_auth_with_a_trusted_certificate(
    ca: trustme.CA, tls_server: SmtpServer
) -> None:
    # Given a server requiring STARTTLS and AUTH, and a pool trusting its CA
    pool = SmtpPool(ssl_context=lambda: trusting(ca))
    tls_account = account(tls_server, use_tls=True, user="alice", password="wonderland")
    try:
        # When a message is sent twice
        pool.send(tls_account, SENDER, ["user@example.test"], mail("secure 1"))
        pool.send(tls_account, SENDER, ["user@example.test"], mail("secure 2"))
    finally:
        pool.close_all()
    # Then both arrive over one authenticated TLS connection
    assert [r.message["Subject"] for r in tls_server.handler.wait_for(2)] == [
        "secure 1",
        "secure 2",
    ]
    assert pool.connections_opened == 1


def test_an_untrusted_certificate_is_a_permanent_failure(tls_server: SmtpServer) -> None:
    # Given a pool with the system's trust store only (the test CA is unknown to it)
    pool = SmtpPool()
    tls_account = account(tls_server, use_tls=True, user="alice", password="wonderland")
    with pytest.raises(DeliveryError) as caught:
        pool.send(tls_account, SENDER, ["user@example.test"], mail("x"))
    assert not caught.value.temporary
    assert caught.value.text.startswith("TLS certificate not trusted")
    assert tls_server.received == []


def test_a_wrong_password_is_a_permanent_failure(ca: trustme.CA, tls_server: SmtpServer) -> None:
    pool = SmtpPool(ssl_context=lambda: trusting(ca))
    tls_account = account(tls_server, use_tls=True, user="alice", password="guess")
    with pytest.raises(DeliveryError) as caught:
        pool.send(tls_account, SENDER, ["user@example.test"], mail("x"))
    assert not caught.value.temporary
    assert caught.value.smtp_code == 535
    assert caught.value.reason.startswith("Authentication failed")
    assert tls_server.received == []


def test_all_recipients_refused_is_permanent_and_the_connection_stays_usable(
    pool: SmtpPool,
) -> None:
    # Given a server that answers 550 at RCPT for both recipients
    handler = RecordingHandler(
        rcpt_replies={
            "gone@example.test": "550 5.1.1 No such user",
            "old@example.test": "550 5.1.1 No such user",
        }
    )
    with SmtpServer(handler) as server:
        with pytest.raises(DeliveryError) as caught:
            pool.send(account(server), SENDER, ["gone@example.test", "old@example.test"], mail("x"))
        # Then the failure is permanent, says who and why, with the server's code
        assert not caught.value.temporary
        assert caught.value.smtp_code == 550
        assert caught.value.text == (
            "All recipients refused (gone@example.test, old@example.test): "
            "5.1.1 No such user (SMTP 550)"
        )
        # and the next message goes over the same connection
        pool.send(account(server), SENDER, ["user@example.test"], mail("next"))
        assert [r.message["Subject"] for r in server.handler.wait_for(1)] == ["next"]
        assert pool.connections_opened == 1


def test_451_at_data_is_temporary(pool: SmtpPool) -> None:
    # Given a server that answers 451 after the message data
    server = SmtpServer(RecordingHandler(data_reply="451 4.3.0 Try again later"))
    with server, pytest.raises(DeliveryError) as caught:
        pool.send(account(server), SENDER, ["user@example.test"], mail("x"))
    # Then the failure is temporary, with the server's code and text
    assert caught.value.temporary
    assert caught.value.smtp_code == 451
    assert caught.value.text == "Message refused: 4.3.0 Try again later (SMTP 451)"


def test_554_at_data_is_permanent(pool: SmtpPool) -> None:
    server = SmtpServer(RecordingHandler(data_reply="554 5.7.1 Looks like spam"))
    with server, pytest.raises(DeliveryError) as caught:
        pool.send(account(server), SENDER, ["user@example.test"], mail("x"))
    assert not caught.value.temporary
    assert caught.value.smtp_code == 554


def test_some_recipients_refused_the_others_get_the_message(pool: SmtpPool) -> None:
    # Given a server that knows one recipient of two
    handler = RecordingHandler(rcpt_replies={"gone@example.test": "550 5.1.1 No such user"})
    with SmtpServer(handler) as server:
        # When a message is sent to both
        refused = pool.send(
            account(server), SENDER, ["user@example.test", "gone@example.test"], mail("x")
        )
        received = server.handler.wait_for(1)
    # Then the refusal is returned and the other recipient has the message
    assert refused == {"gone@example.test": "550 5.1.1 No such user"}
    assert [r.recipients for r in received] == [["user@example.test"]]


def test_a_closed_port_is_a_temporary_failure(pool: SmtpPool) -> None:
    # Given nothing listening on the account's port / When sending
    with pytest.raises(DeliveryError) as caught:
        pool.send(account(port=free_port()), SENDER, ["user@example.test"], mail("x"))
    # Then it will be retried later
    assert caught.value.temporary
    assert caught.value.text == "Connection refused"
    assert pool.connections_opened == 0
