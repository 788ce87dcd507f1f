"""The SSRF guard of outbound_http against real HTTP servers on 127.0.0.1.

Nothing here may reach any address but loopback: every connection goes through a spy on
urllib3's create_connection that records it and fails the test if it is not to loopback. A
forbidden destination is shown refused before connecting: it never reaches the spy."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import trustme

from mailproxy.outbound_http import (
    MAX_REDIRECTS,
    BlockedDestination,
    UrlPolicy,
    guarded_session,
    request,
)
from tests.support.http_servers import (
    HttpServer,
    Recorded,
    Reply,
    full_backlog_listener,
    redirect,
    silent_listener,
)

pytestmark = pytest.mark.timeout(10)

DEFAULT = UrlPolicy()
LOOPBACK = UrlPolicy(allow_loopback=True)
BOTH = UrlPolicy(allow_loopback=True, allow_private=True)
QUICK = (0.5, 0.5)


@dataclass
class ConnectionSpy:
    """Stands in for urllib3's create_connection: records every address connected to, lets
    only loopback through, and connects a `reroute`d address to a loopback one instead."""

    real: Callable[..., Any]
    attempts: list[tuple[str, int]] = field(default_factory=list)
    reroute: dict[str, str] = field(default_factory=dict)

    def __call__(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        self.attempts.append((host, port))
        host = self.reroute.get(host, host)
        literal = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        if not literal.is_loopback:
            raise AssertionError(f"a test tried to connect to {host}")
        return self.real((host, port), *args, **kwargs)

    def hosts(self) -> list[str]:
        return [host for host, _ in self.attempts]


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> ConnectionSpy:
    from urllib3.util import connection

    spy = ConnectionSpy(connection.create_connection)
    monkeypatch.setattr(connection, "create_connection", spy)
    return spy


@dataclass
class FakeResolver:
    """Answers from a table (a list of answers per name is used in turn, the last repeated)."""

    answers: dict[str, list[list[str]]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.answers[host]
        return list(answers[min(self.calls.count(host), len(answers)) - 1])


def resolver(**names: list[str]) -> FakeResolver:
    return FakeResolver({name.replace("_", "."): [answer] for name, answer in names.items()})


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer({"/": Reply(200, b"hello from loopback")}) as running:
        yield running


# --- loopback: allowed only when the policy says so ---


def test_loopback_is_reached_when_the_policy_allows_it(
    server: HttpServer, connections: ConnectionSpy
) -> None:
    # Given a server on 127.0.0.1 and a policy that allows loopback
    session = guarded_session(LOOPBACK)

    # When it is called
    response = request("GET", server.url("/"), LOOPBACK, session=session, timeout=QUICK)

    # Then the body comes back, from the one address connected to
    assert response.status_code == 200
    assert response.text == "hello from loopback"
    assert connections.attempts == [("127.0.0.1", server.port)]


def test_loopback_is_refused_by_default(server: HttpServer, connections: ConnectionSpy) -> None:
    # Given the same server and the default policy
    session = guarded_session(DEFAULT)

    # When it is called by address, or by a name that resolves to it
    # Then both are refused, and nothing was ever connected to
    for url in (
        server.url("/"),
        server.url("/", host="localhost"),
        server.url("/", host="[::ffff:127.0.0.1]"),
    ):
        with pytest.raises(BlockedDestination, match="loopback"):
            request("GET", url, DEFAULT, session=session, timeout=QUICK)
    assert connections.attempts == []
    assert server.received == []


def test_loopback_named_as_a_bare_number_is_refused_after_resolution(
    server: HttpServer, connections: ConnectionSpy
) -> None:
    # Given a URL naming 127.0.0.1 as one number, as the system resolver reads it
    url = server.url("/", host=str(int(ipaddress.IPv4Address("127.0.0.1"))))

    # When the guarded connection itself is asked (past the URL check, which also refuses it)
    # Then it is refused by default and reaches the server when loopback is allowed
    with pytest.raises(BlockedDestination, match="loopback"):
        guarded_session(DEFAULT).get(url, timeout=QUICK, allow_redirects=False)
    assert connections.attempts == []
    response = request("GET", url, LOOPBACK, session=guarded_session(LOOPBACK), timeout=QUICK)
    assert response.text == "hello from loopback"


def test_the_guard_is_in_the_connection_not_only_in_request(
    server: HttpServer, connections: ConnectionSpy
) -> None:
    # Given a guarded session used directly, without request()'s URL check
    session = guarded_session(DEFAULT, resolve=resolver(evil_test=["127.0.0.1"]))

    # When it is asked for a name that resolves to loopback
    # Then the connection refuses it
    with pytest.raises(BlockedDestination, match="loopback"):
        session.get(server.url("/", host="evil.test"), timeout=QUICK)
    assert connections.attempts == []


# --- DNS: the address connected to is the one checked ---


def test_the_request_goes_to_the_checked_address_with_the_original_host_name(
    server: HttpServer, connections: ConnectionSpy
) -> None:
    # Given a name the resolver maps to the loopback server, and a policy that allows loopback
    resolve = resolver(good_test=["127.0.0.1"])
    session = guarded_session(LOOPBACK, resolve=resolve)

    # When it is called
    response = request(
        "GET", server.url("/", host="good.test"), LOOPBACK, session=session, timeout=QUICK
    )

    # Then the server got it, addressed to the name; the name was resolved once, by the guard
    assert response.text == "hello from loopback"
    assert server.received[0].header("Host") == f"good.test:{server.port}"
    assert resolve.calls == ["good.test"]
    assert connections.attempts == [("127.0.0.1", server.port)]


def test_dns_rebinding_cannot_move_the_connection_after_the_check(
    server: HttpServer, connections: ConnectionSpy
) -> None:
    # Given a name whose first answer is a public address and every later one is loopback
    # (the spy stands in for the public host: it carries that connection to the local server)
    resolve = FakeResolver({"rebind.test": [["8.8.8.8"], ["127.0.0.1"]]})
    connections.reroute["8.8.8.8"] = "127.0.0.1"
    url = server.url("/", host="rebind.test")

    # When it is called, then called again on a new session (a new connection)
    response = request(
        "GET", url, DEFAULT, session=guarded_session(DEFAULT, resolve=resolve), timeout=QUICK
    )

    # Then the first connection went to the address that was checked, with no second lookup
    # for a rebinding answer to slip in, and the next connection, now resolving to loopback,
    # is refused before connecting
    assert response.status_code == 200
    assert resolve.calls == ["rebind.test"]
    assert connections.attempts == [("8.8.8.8", server.port)]
    with pytest.raises(BlockedDestination, match="loopback"):
        request(
            "GET", url, DEFAULT, session=guarded_session(DEFAULT, resolve=resolve), timeout=QUICK
        )
    assert connections.attempts == [("8.8.8.8", server.port)]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("10.0.0.1", "private"),
        ("192.168.0.10", "private"),
        ("fe80::1%eth0", "link-local"),
    ],
)
def test_a_name_resolving_to_a_forbidden_address_is_refused_before_connecting(
    address: str, reason: str, connections: ConnectionSpy
) -> None:
    # Given a name that resolves to a forbidden address, under a policy allowing loopback only
    session = guarded_session(LOOPBACK, resolve=resolver(evil_test=[address]))

    # When it is called
    # Then it is refused at once, and no connection was even attempted
    with pytest.raises(BlockedDestination, match=reason):
        request("GET", "http://evil.test/latest/meta-data/", LOOPBACK, session=session)
    assert connections.attempts == []


def test_a_name_with_one_forbidden_address_among_good_ones_is_refused(
    server: HttpServer, connections: ConnectionSpy
) -> None:
    # Given a name resolving to the loopback server and to a private address
    session = guarded_session(LOOPBACK, resolve=resolver(mixed_test=["127.0.0.1", "10.0.0.1"]))

    # When it is called
    # Then it is refused whole: the good address is not tried either
    with pytest.raises(BlockedDestination, match=r"10\.0\.0\.1"):
        request("GET", server.url("/", host="mixed.test"), LOOPBACK, session=session)
    assert connections.attempts == []


def test_the_next_checked_address_is_tried_when_one_refuses(
    server: HttpServer, connections: ConnectionSpy
) -> None:
    # Given a name resolving first to a loopback address nobody listens on, then to the server
    resolve = resolver(two_test=["127.0.0.2", "127.0.0.1"])
    session = guarded_session(LOOPBACK, resolve=resolve)

    # When it is called
    response = request("GET", server.url("/", host="two.test"), LOOPBACK, session=session)

    # Then the second address answers
    assert response.text == "hello from loopback"
    assert connections.hosts() == ["127.0.0.2", "127.0.0.1"]


def test_a_refused_connection_is_a_requests_connection_error(
    connections: ConnectionSpy,
) -> None:
    # Given a loopback port that is bound but not listening: a connection to it is refused
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = int(bound.getsockname()[1])

        # When it is called
        # Then requests reports a ConnectionError (not a BlockedDestination, nor a timeout)
        with pytest.raises(requests.ConnectionError) as raised:
            request("GET", f"http://127.0.0.1:{port}/", LOOPBACK, session=guarded_session(LOOPBACK))
    assert not isinstance(raised.value, requests.Timeout)
    assert connections.attempts == [("127.0.0.1", port)]


def test_a_name_that_does_not_resolve_is_refused(connections: ConnectionSpy) -> None:
    # Given a resolver that knows no such name
    def nxdomain(host: str, port: int) -> list[str]:
        raise OSError(f"no such name {host}")

    session = guarded_session(LOOPBACK, resolve=nxdomain)

    # When it is called
    # Then it is refused, without any connection
    with pytest.raises(BlockedDestination, match="cannot resolve"):
        request("GET", "http://nowhere.test/", LOOPBACK, session=session)
    assert connections.attempts == []


def test_a_proxy_is_never_used_by_a_guarded_session(connections: ConnectionSpy) -> None:
    # Given a guarded session, and a call that names a proxy
    session = guarded_session(LOOPBACK)

    # When it is made
    # Then it is refused: through a proxy, the proxy's address would be the one checked
    with pytest.raises(BlockedDestination, match="proxy"):
        request(
            "GET",
            "http://tenant.test/",
            LOOPBACK,
            session=session,
            proxies={"http": "http://127.0.0.1:3128"},
        )
    assert connections.attempts == []


# --- redirects: every hop checked ---


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://internal.test/admin", "private"),
        ("http://metadata.test/latest/meta-data/", "metadata"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "only http and https"),
    ],
)
def test_a_redirect_to_a_forbidden_place_is_refused(
    location: str, reason: str, connections: ConnectionSpy
) -> None:
    # Given a loopback server that redirects somewhere forbidden, under a policy allowing
    # loopback (names resolve, through the resolver, to private and metadata addresses)
    resolve = resolver(
        tenant_test=["127.0.0.1"],
        internal_test=["10.1.2.3"],
        metadata_test=["169.254.169.254"],
    )
    session = guarded_session(LOOPBACK, resolve=resolve)
    with HttpServer({"/go": redirect(location)}) as server:
        # When it is called
        # Then the redirect is refused, and only the server itself was connected to
        with pytest.raises(BlockedDestination, match=reason):
            request("GET", server.url("/go", host="tenant.test"), LOOPBACK, session=session)
        assert server.paths() == ["/go"]
    assert set(connections.hosts()) == {"127.0.0.1"}


def hop_chain(request: Recorded) -> Reply:
    """/hop/N redirects to /hop/N-1; /hop/0 answers."""
    left = int(request.path.rsplit("/", 1)[1])
    return redirect(f"/hop/{left - 1}") if left else Reply(200, b"end of the chain")


def test_a_redirect_chain_of_max_redirects_is_followed_and_a_longer_one_refused() -> None:
    # Given a server whose /hop/N takes N redirects to answer
    with HttpServer(fallback=hop_chain) as server:
        session = guarded_session(LOOPBACK)

        # When a chain of exactly MAX_REDIRECTS is followed
        response = request("GET", server.url(f"/hop/{MAX_REDIRECTS}"), LOOPBACK, session=session)

        # Then it ends at the last hop
        assert response.text == "end of the chain"
        assert len(server.paths()) == MAX_REDIRECTS + 1

        # And when one more is needed, it is refused after MAX_REDIRECTS hops
        with pytest.raises(BlockedDestination, match="redirects"):
            request("GET", server.url(f"/hop/{MAX_REDIRECTS + 1}"), LOOPBACK, session=session)
        assert len(server.paths()) == 2 * (MAX_REDIRECTS + 1)


def test_a_redirect_loop_is_refused() -> None:
    # Given a server that redirects a path to itself
    with HttpServer({"/loop": redirect("/loop")}) as server:
        # When it is called
        # Then it is refused after MAX_REDIRECTS + 1 requests
        with pytest.raises(BlockedDestination, match="redirects"):
            request("GET", server.url("/loop"), LOOPBACK, session=guarded_session(LOOPBACK))
        assert server.paths() == ["/loop"] * (MAX_REDIRECTS + 1)


def test_a_redirect_to_another_local_path_is_followed() -> None:
    # Given a server that moved a document
    routes = {"/old": redirect("/new?v=2", 301), "/new": Reply(200, b"the document")}
    with HttpServer(routes) as server:
        # When the old URL is called with query parameters
        response = request(
            "GET",
            server.url("/old"),
            LOOPBACK,
            session=guarded_session(LOOPBACK),
            params={"v": "1"},
        )

        # Then the document comes back, from the Location's URL (its own query, not ours)
        assert response.text == "the document"
        assert response.url == server.url("/new?v=2")
        assert server.paths() == ["/old?v=1", "/new?v=2"]


def test_a_post_keeps_its_body_through_a_307_and_becomes_a_get_through_a_303() -> None:
    # Given a report endpoint that moved (307), and one that answers with "see other" (303)
    routes = {
        "/report": redirect("/report-v2", 307),
        "/report-v2": Reply(200, b"stored"),
        "/submit": redirect("/result", 303),
        "/result": Reply(200, b"result"),
    }
    with HttpServer(routes) as server:
        session = guarded_session(LOOPBACK)

        # When a JSON body is posted to each
        request("POST", server.url("/report"), LOOPBACK, session=session, json={"a": 1})
        request("POST", server.url("/submit"), LOOPBACK, session=session, json={"a": 1})

        # Then the 307 is followed by the same POST, and the 303 by a GET without a body
        methods_and_bodies = [(r.method, r.path, r.body) for r in server.received]
        assert methods_and_bodies == [
            ("POST", "/report", b'{"a": 1}'),
            ("POST", "/report-v2", b'{"a": 1}'),
            ("POST", "/submit", b'{"a": 1}'),
            ("GET", "/result", b""),
        ]


# --- credentials: never sent to another host ---


@pytest.fixture
def two_hosts() -> Iterator[tuple[HttpServer, HttpServer]]:
    """tenant.test, which redirects /report to other.test, and other.test; both on loopback."""
    with HttpServer({"/report": Reply(200, b"ok")}) as other:
        routes = {
            "/report": redirect(other.url("/report", host="other.test"), 307),
            "/same-host": redirect("/done", 307),
            "/done": Reply(200, b"done"),
        }
        with HttpServer(routes) as tenant:
            yield tenant, other


def two_host_session() -> Any:
    return guarded_session(
        LOOPBACK, resolve=resolver(tenant_test=["127.0.0.1"], other_test=["127.0.0.1"])
    )


@pytest.mark.parametrize(
    ("credentials", "on_session"),
    [
        pytest.param({"headers": {"Authorization": "Bearer tenant-secret"}}, {}, id="header"),
        pytest.param({"headers": {"authorization": "Bearer tenant-secret"}}, {}, id="lowercase"),
        pytest.param({"auth": ("tenant", "secret")}, {}, id="auth"),
        pytest.param({}, {"headers": "Bearer tenant-secret"}, id="session-header"),
        pytest.param({}, {"auth": ("tenant", "secret")}, id="session-auth"),
    ],
)
def test_a_redirect_to_another_host_drops_the_credentials(
    two_hosts: tuple[HttpServer, HttpServer],
    credentials: dict[str, Any],
    on_session: dict[str, Any],
) -> None:
    # Given a tenant endpoint that redirects to another host, and credentials for the tenant,
    # given with the call or set on the session
    tenant, other = two_hosts
    session = two_host_session()
    if "headers" in on_session:
        session.headers["Authorization"] = on_session["headers"]
    session.auth = on_session.get("auth")

    # When a report is posted there
    response = request(
        "POST",
        tenant.url("/report", host="tenant.test"),
        LOOPBACK,
        session=session,
        json={"delivery_report": []},
        **credentials,
    )

    # Then the tenant's host got the credentials, and the other host got the body without them
    assert response.status_code == 200
    assert tenant.received[0].header("Authorization") is not None
    (forwarded,) = other.received
    assert forwarded.header("Host") == f"other.test:{other.port}"
    assert forwarded.header("Authorization") is None
    assert forwarded.body == b'{"delivery_report": []}'


def test_a_redirect_on_the_same_host_keeps_the_credentials(
    two_hosts: tuple[HttpServer, HttpServer],
) -> None:
    # Given a tenant endpoint that redirects to another path of its own
    tenant, _ = two_hosts

    # When it is called with credentials
    request(
        "GET",
        tenant.url("/same-host", host="tenant.test"),
        LOOPBACK,
        session=two_host_session(),
        headers={"Authorization": "Bearer tenant-secret"},
    )

    # Then both hops carried them
    assert [r.header("Authorization") for r in tenant.received] == ["Bearer tenant-secret"] * 2


# --- HTTPS: the checked address is connected to, the certificate is checked for the name ---


@pytest.fixture
def tls_server(tmp_path: Any) -> Iterator[tuple[HttpServer, str]]:
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("secure.test").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with HttpServer({"/": Reply(200, b"over tls")}, tls=context) as server:
        yield server, str(ca_file)


def test_https_connects_to_the_checked_address_and_verifies_the_name(
    tls_server: tuple[HttpServer, str], connections: ConnectionSpy
) -> None:
    # Given a TLS server with a certificate for secure.test, which resolves to it
    server, ca_file = tls_server
    session = guarded_session(
        LOOPBACK, resolve=resolver(secure_test=["127.0.0.1"], wrong_test=["127.0.0.1"])
    )
    session.verify = ca_file

    # When it is called by that name
    response = request("GET", server.url("/", "secure.test", "https"), LOOPBACK, session=session)

    # Then the certificate matched the name while the connection went to the checked address
    assert response.text == "over tls"
    assert connections.attempts == [("127.0.0.1", server.port)]

    # And by another name resolving to the same address, the certificate does not match
    with pytest.raises(requests.exceptions.SSLError):
        request(
            "GET", server.url("/", "wrong.test", "https"), LOOPBACK, session=session, timeout=QUICK
        )


# --- timeouts ---


def test_a_server_that_never_answers_ends_in_a_read_timeout() -> None:
    # Given a loopback port that accepts connections and never answers
    with silent_listener() as port:
        started = time.monotonic()

        # When it is called with a short read timeout
        # Then the call fails with a read timeout, within about that timeout
        with pytest.raises(requests.exceptions.ReadTimeout):
            request(
                "GET",
                f"http://127.0.0.1:{port}/",
                LOOPBACK,
                session=guarded_session(LOOPBACK),
                timeout=(0.5, 0.2),
            )
        # (a silent server would hold it forever; the bound leaves room for a loaded machine)
        assert time.monotonic() - started < 5


def test_a_server_that_never_accepts_ends_in_a_connect_timeout() -> None:
    # Given a loopback port whose accept queue is full, so that a connection hangs
    with full_backlog_listener() as port:
        started = time.monotonic()

        # When it is called with a short connect timeout
        # Then the call fails with a connect timeout (not a read timeout, nor a generic
        # "connection aborted"), within about that timeout
        with pytest.raises(requests.exceptions.ConnectTimeout):
            request(
                "GET",
                f"http://127.0.0.1:{port}/",
                LOOPBACK,
                session=guarded_session(LOOPBACK),
                timeout=(0.2, 5),
            )
        assert time.monotonic() - started < 4  # not the 5 s read timeout
