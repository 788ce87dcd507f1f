"""The SMTP pool against real servers that misbehave as real servers do: a 421 in the middle
of a session, a connection lost after the message data, a server that never greets, idle
connections the server dropped, ttl, two senders at once, implicit TLS and TLS policy.

Time is a fake clock handed to the pool (`monotonic=`): no test waits for a ttl or an idle
period. The only real waits are the short timeouts of the hung-server cases."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from mailproxy.delivery.smtp_pool import NOOP_AFTER_IDLE_SECONDS, AmbiguousDelivery, SmtpPool
from mailproxy.domain.account import Account, TlsMode
from mailproxy.domain.errors import DeliveryError
from tests.support.smtp_servers import SmtpServer, free_port

SENDER = "app@acme.test"
RECIPIENTS = ["user@example.test"]

# The test servers take AUTH without TLS on purpose (the TLS cases require STARTTLS anyway).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ImplicitTlsAccount(Account):
    """An account whose server speaks TLS from the first byte on a port other than 465.

    Account.tls_mode maps only port 465 to implicit TLS (SPEC.md's use_tls), and a test
    server cannot listen on 465 unprivileged, so the test says so here, not in production."""

    @property
    def tls_mode(self) -> TlsMode:
        return TlsMode.IMPLICIT


def account(server: SmtpServer, **overrides: Any) -> Account:
    fields: dict[str, Any] = {
        "id": "main",
        "tenant_id": "acme",
        "host": "127.0.0.1",
        "port": server.port,
        "use_tls": False,
    }
    return Account.model_validate(fields | overrides)


def mail(subject: str) -> bytes:
    return f"From: {SENDER}\r\nTo: {RECIPIENTS[0]}\r\nSubject: {subject}\r\n\r\nHello\r\n".encode()


def subjects(server: SmtpServer) -> list[str]:
    return [str(r.message["Subject"]) for r in server.received]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pool(clock: FakeClock) -> Iterator[SmtpPool]:
    pool = SmtpPool(monotonic=clock)
    yield pool
    pool.close_all()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# --- a 421 in the middle of a session ------------------------------------------------------


def test_a_421_at_mail_on_a_pooled_connection_is_sent_again_on_a_fresh_one(
    pool: SmtpPool,
) -> None:
    # Given a pooled connection to a server that, after one message, answers the next
    # MAIL FROM with 421 and closes the connection (once)
    with SmtpServer(close_with_421_after=1) as server:
        pool.send(account(server), SENDER, RECIPIENTS, mail("first"))
        # When the next message is sent
        refused = pool.send(account(server), SENDER, RECIPIENTS, mail("second"))
        # Then it goes out over a fresh connection, without an error, and only once
        assert refused == {}
        assert subjects(server) == ["first", "second"]
        assert pool.connections_opened == 2
        assert server.connections == 2
        # and the fresh connection is the one kept for the next message
        pool.send(account(server), SENDER, RECIPIENTS, mail("third"))
        assert subjects(server) == ["first", "second", "third"]
        assert pool.connections_opened == 2


def test_a_421_at_mail_on_a_fresh_connection_is_a_temporary_failure(pool: SmtpPool) -> None:
    # Given a server that answers the very first MAIL FROM with 421 and closes
    with SmtpServer(close_with_421_after=0) as server:
        # When a message is sent (there is no pooled connection to blame)
        with pytest.raises(DeliveryError) as caught:
            pool.send(account(server), SENDER, RECIPIENTS, mail("x"))
        # Then it fails, to be tried again later, with the server's code, and nothing arrived
        assert caught.value.temporary
        assert caught.value.smtp_code == 421
        assert server.received == []
        # and the closed connection is not kept: the next message opens another one
        pool.send(account(server), SENDER, RECIPIENTS, mail("later"))
        assert subjects(server) == ["later"]
        assert pool.connections_opened == 2


# --- the connection lost after the message data ---------------------------------------------


def test_a_connection_dropped_after_data_is_ambiguous_and_not_reused(pool: SmtpPool) -> None:
    # Given a server that takes the message and then drops the connection without answering
    with SmtpServer(drop_after_data=True) as server:
        # When a message is sent
        with pytest.raises(AmbiguousDelivery) as caught:
            pool.send(account(server), SENDER, RECIPIENTS, mail("maybe"))
        # Then the failure is temporary but ambiguous (the server may have the message: it
        # does here), and the pool did not send it again by itself
        assert caught.value.temporary
        assert subjects(server) == ["maybe"]
        assert pool.connections_opened == 1
        # and the next message does not go over the dead connection
        server.drop_after_data = False
        pool.send(account(server), SENDER, RECIPIENTS, mail("next"))
        assert subjects(server) == ["maybe", "next"]
        assert pool.connections_opened == 2


def test_a_server_silent_after_data_is_ambiguous_within_the_send_timeout(clock: FakeClock) -> None:
    # Given a server that takes the message and never answers it, and a 0.5 s send timeout
    pool = SmtpPool(monotonic=clock, connect_timeout=0.5, send_timeout=0.5)
    with SmtpServer(stall_after_data=True) as server:
        started = time.monotonic()
        # When a message is sent
        with pytest.raises(AmbiguousDelivery) as caught:
            pool.send(account(server), SENDER, RECIPIENTS, mail("maybe"))
        elapsed = time.monotonic() - started
        pool.close_all()
    # Then it gives up after about the send timeout, as an ambiguous, temporary failure
    assert caught.value.temporary
    assert elapsed < 10  # a silent server would hold it forever
    assert subjects(server) == ["maybe"]


# --- a server that never greets -------------------------------------------------------------


def test_a_server_that_never_greets_is_a_temporary_failure_within_the_timeout(
    clock: FakeClock,
) -> None:
    # Given a server that accepts the connection and never says a word, and 0.5 s timeouts
    pool = SmtpPool(monotonic=clock, connect_timeout=0.5, send_timeout=0.5)
    with SmtpServer(never_greet=True) as server:
        started = time.monotonic()
        # When a message is sent
        with pytest.raises(DeliveryError) as caught:
            pool.send(account(server), SENDER, RECIPIENTS, mail("x"))
        elapsed = time.monotonic() - started
    # Then it fails after about the connect timeout, to be tried again later
    assert caught.value.temporary
    assert not isinstance(caught.value, AmbiguousDelivery)
    assert "timed out" in caught.value.text.lower()
    assert 0.4 < elapsed < 10
    assert pool.connections_opened == 0


def test_a_slow_greeting_within_the_connect_timeout_is_waited_for(clock: FakeClock) -> None:
    # Given a server 0.1 s away (its greeting comes late) and a 0.5 s connect timeout
    pool = SmtpPool(monotonic=clock, connect_timeout=0.5, send_timeout=0.5)
    with SmtpServer(greeting_delay=0.1) as server:
        # When a message is sent / Then it arrives
        pool.send(account(server), SENDER, RECIPIENTS, mail("slow"))
        pool.close_all()
        assert subjects(server) == ["slow"]


# --- idle connections -----------------------------------------------------------------------


def test_a_connection_idle_for_over_30_seconds_is_checked_with_noop_before_reuse(
    pool: SmtpPool, clock: FakeClock, smtp_server: SmtpServer
) -> None:
    # Given a pooled connection
    pool.send(account(smtp_server), SENDER, RECIPIENTS, mail("n0"))
    # When the next message follows 10 s later / Then it is sent without a NOOP first
    clock.advance(10)
    pool.send(account(smtp_server), SENDER, RECIPIENTS, mail("n1"))
    assert smtp_server.noops == 0
    # When the next one follows after more than 30 s of idleness
    clock.advance(NOOP_AFTER_IDLE_SECONDS + 1)
    pool.send(account(smtp_server), SENDER, RECIPIENTS, mail("n2"))
    # Then the server was asked NOOP first, and the same connection carried all three
    assert smtp_server.noops == 1
    assert subjects(smtp_server) == ["n0", "n1", "n2"]
    assert pool.connections_opened == 1
    assert smtp_server.connections == 1


def test_an_idle_connection_the_server_dropped_is_replaced_transparently(
    pool: SmtpPool, clock: FakeClock, smtp_server: SmtpServer
) -> None:
    # Given a pooled connection that the server dropped while it sat idle for 31 s
    pool.send(account(smtp_server), SENDER, RECIPIENTS, mail("before"))
    smtp_server.drop_connections()
    clock.advance(NOOP_AFTER_IDLE_SECONDS + 1)
    # When the next message is sent
    refused = pool.send(account(smtp_server), SENDER, RECIPIENTS, mail("after"))
    # Then it goes out over a fresh connection, without an error
    assert refused == {}
    assert subjects(smtp_server) == ["before", "after"]
    assert pool.connections_opened == 2
    assert smtp_server.connections == 2


def test_an_idle_tls_connection_the_server_dropped_is_replaced_transparently(
    ca: trustme.CA, clock: FakeClock
) -> None:
    # Given a pooled STARTTLS + AUTH connection that the server dropped while it sat idle
    pool = SmtpPool(monotonic=clock, ssl_context=lambda: trusting(ca))
    with SmtpServer(credentials=("alice", "wonderland"), tls_context=server_context(ca)) as server:
        tls_account = account(server, use_tls=True, user="alice", password="wonderland")
        pool.send(tls_account, SENDER, RECIPIENTS, mail("before"))
        server.drop_connections()
        clock.advance(NOOP_AFTER_IDLE_SECONDS + 1)
        # When the next message is sent
        pool.send(tls_account, SENDER, RECIPIENTS, mail("after"))
        pool.close_all()
    # Then it goes out over a fresh connection, without an error
    assert subjects(server) == ["before", "after"]
    assert pool.connections_opened == 2


# --- ttl ------------------------------------------------------------------------------------


def test_the_ttl_counts_from_creation_not_from_last_use(
    pool: SmtpPool, clock: FakeClock, smtp_server: SmtpServer
) -> None:
    # Given an account whose connections live 60 s, and a connection used every 25 s
    ttl_account = account(smtp_server, ttl=60)
    for n in range(3):  # at 0, 25 and 50 s after its creation
        pool.send(ttl_account, SENDER, RECIPIENTS, mail(f"n{n}"))
        clock.advance(25)
    assert pool.connections_opened == 1
    # When a message is sent 75 s after the connection was made (25 s after its last use)
    pool.send(ttl_account, SENDER, RECIPIENTS, mail("n3"))
    # Then the old connection was closed (QUIT) and a fresh one carried the message
    assert pool.connections_opened == 2
    assert smtp_server.connections == 2
    assert smtp_server.quits == 1
    assert subjects(smtp_server) == ["n0", "n1", "n2", "n3"]


def test_a_ttl_of_zero_closes_the_connection_right_after_its_message(
    pool: SmtpPool, smtp_server: SmtpServer
) -> None:
    # Given an account whose connections must not outlive their message / When one is sent
    pool.send(account(smtp_server, ttl=0), SENDER, RECIPIENTS, mail("only"))
    # Then the connection said goodbye at once, not at the next send (which may never come)
    assert smtp_server.quits == 1
    assert subjects(smtp_server) == ["only"]


# --- two senders at once --------------------------------------------------------------------


def test_a_connection_is_never_used_by_two_threads_at_once(
    pool: SmtpPool, smtp_server: SmtpServer
) -> None:
    # Given one pooled connection, and a server that holds DATA until two transactions are
    # in progress at the same time
    pool.send(account(smtp_server), SENDER, RECIPIENTS, mail("warm"))
    smtp_server.hold_at_data(2)
    errors: list[BaseException] = []

    def send(subject: str) -> None:
        try:
            pool.send(account(smtp_server), SENDER, RECIPIENTS, mail(subject))
        except BaseException as error:  # reported below
            errors.append(error)

    # When two threads send to the same account at once
    threads = [threading.Thread(target=send, args=(f"t{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # Then both transactions ran side by side, each on a connection of its own
    assert errors == []
    assert smtp_server.gathered.is_set()
    assert sorted(subjects(smtp_server)) == ["t0", "t1", "warm"]
    assert pool.connections_opened == 2
    assert smtp_server.connections == 2


def send_at_once(pool: SmtpPool, sends: list[tuple[Account, str]]) -> list[BaseException]:
    """Each (account, subject) sent from a thread of its own, all started together; the
    errors they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(sends))

    def send(target: Account, subject: str) -> None:
        start.wait(timeout=5)
        try:
            pool.send(target, SENDER, RECIPIENTS, mail(subject))
        except BaseException as error:  # reported to the caller
            errors.append(error)

    threads = [threading.Thread(target=send, args=item) for item in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def test_no_more_than_max_connections_are_open_at_once() -> None:
    # Given a server a round trip away from every reply, and an account of 3 connections
    with SmtpServer(reply_delay=0.02) as server:
        pool = SmtpPool()
        try:
            # When ten threads send for the account at the same moment
            errors = send_at_once(
                pool, [(account(server, max_connections=3), f"t{n}") for n in range(10)]
            )
        finally:
            pool.close_all()
    # Then all ten arrive, over three connections that sent side by side, never more
    assert errors == []
    assert sorted(subjects(server)) == [f"t{n}" for n in range(10)]
    assert pool.connections_opened == 3
    assert server.most_connections_at_once == 3
    assert 2 <= server.most_transactions_at_once <= 3


def test_with_one_connection_the_senders_take_turns_on_it(smtp_server: SmtpServer) -> None:
    # Given an account of one connection / When four threads send at once
    pool = SmtpPool()
    try:
        errors = send_at_once(
            pool, [(account(smtp_server, max_connections=1), f"t{n}") for n in range(4)]
        )
    finally:
        pool.close_all()
    # Then each waited for the one connection in turn
    assert errors == []
    assert sorted(subjects(smtp_server)) == ["t0", "t1", "t2", "t3"]
    assert pool.connections_opened == 1
    assert smtp_server.most_transactions_at_once == 1


def test_a_send_that_finds_no_connection_free_in_time_fails_for_now_unsent(
    smtp_server: SmtpServer,
) -> None:
    # Given an account of one connection, busy: the server holds its message at DATA
    pool = SmtpPool(wait_timeout=0.2)
    one = account(smtp_server, max_connections=1)
    smtp_server.hold_at_data(2, timeout=2.0)
    busy = threading.Thread(target=pool.send, args=(one, SENDER, RECIPIENTS, mail("busy")))
    busy.start()
    try:
        deadline = time.monotonic() + 5
        while smtp_server.most_transactions_at_once == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        # When another message is sent for the account meanwhile
        with pytest.raises(DeliveryError) as caught:
            pool.send(one, SENDER, RECIPIENTS, mail("waiting"))
    finally:
        busy.join(timeout=10)
        pool.close_all()
    # Then it gives up after the wait, for now (a retry), and no second connection was opened
    assert caught.value.temporary
    assert not isinstance(caught.value, AmbiguousDelivery)
    assert "max_connections 1" in caught.value.text
    assert pool.connections_opened == 1
    assert subjects(smtp_server) == ["busy"]


def test_failed_and_dropped_connections_give_their_room_back(smtp_server: SmtpServer) -> None:
    # Given an account of one connection, and a pool that waits little for one
    pool = SmtpPool(wait_timeout=0.2)
    try:
        nowhere = account(smtp_server, port=free_port(), max_connections=1)
        one = account(smtp_server, max_connections=1)
        # When connecting fails twice / Then each failure is the server's, not a wait for room
        for _ in range(2):
            with pytest.raises(DeliveryError) as caught:
                pool.send(nowhere, SENDER, RECIPIENTS, mail("x"))
            assert caught.value.text == "Connection refused"
        # When the server drops the one pooled connection between two sends
        pool.send(one, SENDER, RECIPIENTS, mail("before"))
        smtp_server.drop_connections()
        pool.send(one, SENDER, RECIPIENTS, mail("after"))
    finally:
        pool.close_all()
    # Then the dropped one made room for its replacement
    assert subjects(smtp_server) == ["before", "after"]
    assert pool.connections_opened == 2


def test_connections_beyond_a_lowered_max_are_closed_when_handed_back(
    smtp_server: SmtpServer,
) -> None:
    # Given three pooled connections of an account
    pool = SmtpPool()
    try:
        assert (
            send_at_once(
                pool, [(account(smtp_server, max_connections=3), f"t{n}") for n in range(3)]
            )
            == []
        )
        opened = pool.connections_opened
        # When its max_connections is lowered to one and three messages go one by one
        for n in range(3):
            pool.send(account(smtp_server, max_connections=1), SENDER, RECIPIENTS, mail(f"s{n}"))
        # Then the extra connections were closed (QUIT) on their way back, none opened
        assert pool.connections_opened == opened
        assert smtp_server.quits == opened - 1
    finally:
        pool.close_all()


# --- TLS ------------------------------------------------------------------------------------


def implicit_tls_account(server: SmtpServer, **overrides: Any) -> Account:
    fields: dict[str, Any] = {
        "id": "main",
        "tenant_id": "acme",
        "host": "127.0.0.1",
        "port": server.port,
        "use_tls": True,
        "user": "alice",
        "password": "wonderland",
    }
    return ImplicitTlsAccount.model_validate(fields | overrides)


@pytest.fixture
def implicit_tls_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    """A server that speaks TLS from the first byte, with a certificate for 127.0.0.1."""
    with SmtpServer(
        credentials=("alice", "wonderland"), tls_context=server_context(ca), implicit_tls=True
    ) as server:
        yield server


def test_implicit_tls_with_a_trusted_certificate(
    ca: trustme.CA, clock: FakeClock, implicit_tls_server: SmtpServer
) -> None:
    # Given a server with implicit TLS and AUTH, and a pool trusting its CA
    pool = SmtpPool(monotonic=clock, ssl_context=lambda: trusting(ca))
    tls_account = implicit_tls_account(implicit_tls_server)
    assert tls_account.tls_mode is TlsMode.IMPLICIT
    try:
        # When two messages are sent
        pool.send(tls_account, SENDER, RECIPIENTS, mail("secure 1"))
        pool.send(tls_account, SENDER, RECIPIENTS, mail("secure 2"))
    finally:
        pool.close_all()
    # Then both arrive, over one authenticated TLS connection
    assert subjects(implicit_tls_server) == ["secure 1", "secure 2"]
    assert pool.connections_opened == 1
    assert implicit_tls_server.connections == 1


def test_implicit_tls_with_an_untrusted_certificate_is_a_permanent_failure(
    clock: FakeClock, implicit_tls_server: SmtpServer
) -> None:
    # Given a pool with the system's trust store only (the test CA is unknown to it)
    pool = SmtpPool(monotonic=clock)
    # When a message is sent over implicit TLS
    with pytest.raises(DeliveryError) as caught:
        pool.send(implicit_tls_account(implicit_tls_server), SENDER, RECIPIENTS, mail("x"))
    # Then it fails for good (waiting does not make a certificate trusted), and says why
    assert not caught.value.temporary
    assert caught.value.text.startswith("TLS certificate not trusted")
    assert implicit_tls_server.received == []
    assert pool.connections_opened == 0


def test_starttls_required_but_the_account_says_no_tls_is_a_permanent_failure(
    ca: trustme.CA, pool: SmtpPool
) -> None:
    # Given a server that requires STARTTLS before MAIL, and an account with use_tls false
    server = SmtpServer(tls_context=server_context(ca))
    # When a message is sent
    with server, pytest.raises(DeliveryError) as caught:
        pool.send(account(server, use_tls=False), SENDER, RECIPIENTS, mail("x"))
    # Then it fails for good, with the server's 530 and its reason: the account's settings
    # must change (use_tls), waiting will not help
    assert not caught.value.temporary
    assert caught.value.smtp_code == 530
    assert caught.value.text == "Sender refused: Must issue a STARTTLS command first (SMTP 530)"
    assert server.received == []


def test_starttls_required_with_auth_but_the_account_says_no_tls_is_a_permanent_failure(
    ca: trustme.CA, pool: SmtpPool
) -> None:
    # Given a server that requires STARTTLS and AUTH, and an account with use_tls false
    server = SmtpServer(credentials=("alice", "wonderland"), tls_context=server_context(ca))
    no_tls = account(server, use_tls=False, user="alice", password="wonderland")
    # When a message is sent (the login comes first, in the clear)
    with server, pytest.raises(DeliveryError) as caught:
        pool.send(no_tls, SENDER, RECIPIENTS, mail("x"))
    # Then the login is refused for good with the server's 530 (AUTH PLAIN carried the
    # password in its first line, in the clear: that is what use_tls false asks for)
    assert not caught.value.temporary
    assert caught.value.smtp_code == 530
    assert caught.value.text == (
        "Authentication failed: Must issue a STARTTLS command first (SMTP 530)"
    )
    assert server.received == []
    assert pool.connections_opened == 0


def test_an_account_asking_for_tls_from_a_server_without_starttls_is_a_permanent_failure(
    pool: SmtpPool, smtp_server: SmtpServer
) -> None:
    # Given a server that offers no STARTTLS, and an account with use_tls true (not on 465)
    tls_account = account(smtp_server, use_tls=True)
    assert tls_account.tls_mode is TlsMode.STARTTLS
    # When a message is sent
    with pytest.raises(DeliveryError) as caught:
        pool.send(tls_account, SENDER, RECIPIENTS, mail("x"))
    # Then nothing goes out in the clear: it fails for good, naming STARTTLS
    assert not caught.value.temporary
    assert caught.value.smtp_code is None
    assert "STARTTLS" in caught.value.text
    assert smtp_server.received == []
    assert pool.connections_opened == 0
