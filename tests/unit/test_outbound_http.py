"""The SSRF guard of outbound_http without any network: address and URL policy, the checked
resolution, and the hand-followed redirects (over a scripted session)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailproxy.outbound_http import (
    MAX_REDIRECTS,
    BlockedDestination,
    UrlPolicy,
    address_problem,
    checked_addresses,
    guarded_session,
    request,
    url_problem,
)
from mailproxy.timeouts import HTTP_CONNECT_SECONDS, HTTP_READ_SECONDS

DEFAULT = UrlPolicy()
LOOPBACK = UrlPolicy(allow_loopback=True)
PRIVATE = UrlPolicy(allow_private=True)
BOTH = UrlPolicy(allow_loopback=True, allow_private=True)
POLICIES = {"default": DEFAULT, "loopback": LOOPBACK, "private": PRIVATE, "both": BOTH}

# What each policy says of an address: None (may be reached) or a word of the refusal.
# Columns: default, allow_loopback, allow_private, both.
LOOP = ("loopback", None, "loopback", None)
PRIV = ("private", "private", None, None)
META = ("metadata",) * 4
LINK = ("link-local",) * 4
UNSPEC = ("unspecified",) * 4
MULTI = ("multicast",) * 4
OPEN = (None,) * 4

ADDRESS_TABLE = [
    ("127.0.0.1", LOOP),
    ("127.255.255.254", LOOP),
    ("::1", LOOP),
    ("::ffff:127.0.0.1", LOOP),
    ("10.0.0.1", PRIV),
    ("10.255.255.255", PRIV),
    ("172.16.0.1", PRIV),
    ("172.31.255.254", PRIV),
    ("192.168.1.1", PRIV),
    ("100.64.0.1", PRIV),  # carrier-grade NAT
    ("198.18.0.1", PRIV),  # benchmarking
    ("fd12:3456::1", PRIV),  # unique local
    ("fec0::1", PRIV),  # site-local (deprecated, still not global)
    ("::ffff:10.0.0.1", PRIV),
    ("64:ff9b::a00:1", PRIV),  # NAT64 of 10.0.0.1
    ("2002:a00:1::1", PRIV),  # 6to4 of 10.0.0.1
    ("169.254.169.254", META),
    ("fd00:ec2::254", META),
    ("fd00:ec2::254%eth0", META),  # a scope does not make it another address
    ("::ffff:169.254.169.254", META),
    ("64:ff9b::a9fe:a9fe", META),  # NAT64 of 169.254.169.254
    ("2002:a9fe:a9fe::", META),  # 6to4 of 169.254.169.254
    ("::a9fe:a9fe", META),  # IPv4-compatible 169.254.169.254
    ("169.254.1.1", LINK),
    ("fe80::1", LINK),
    ("fe80::1%eth0", LINK),
    ("::ffff:169.254.1.1", LINK),
    ("0.0.0.0", UNSPEC),  # noqa: S104 (a destination judged, not a bind)
    ("0.1.2.3", UNSPEC),  # "this network": never a destination
    ("::", UNSPEC),
    ("::ffff:0.0.0.0", UNSPEC),
    ("224.0.0.1", MULTI),
    ("239.255.255.250", MULTI),
    ("ff02::1", MULTI),
    ("8.8.8.8", OPEN),
    ("1.1.1.1", OPEN),
    ("2001:4860:4860::8888", OPEN),
    ("::ffff:8.8.8.8", OPEN),
    ("64:ff9b::808:808", OPEN),  # NAT64 of a public address: how an IPv6-only host reaches it
]


@pytest.mark.parametrize(("text", "expected"), ADDRESS_TABLE)
@pytest.mark.parametrize("policy_name", list(POLICIES))
def test_address_problem_follows_the_policy(
    text: str, expected: tuple[str | None, ...], policy_name: str
) -> None:
    # Given an address and one of the policies
    address = ipaddress.ip_address(text)
    policy = POLICIES[policy_name]
    want = expected[list(POLICIES).index(policy_name)]

    # When the guard judges it
    problem = address_problem(address, policy)

    # Then it is allowed, or refused for the expected reason
    if want is None:
        assert problem is None
    else:
        assert problem is not None
        assert want in problem


def test_metadata_addresses_are_refused_even_when_everything_else_is_allowed() -> None:
    # Given the most permissive policy there is
    # When the metadata addresses are judged
    # Then both are refused as metadata, not merely as link-local or private
    for text in ("169.254.169.254", "fd00:ec2::254"):
        problem = address_problem(ipaddress.ip_address(text), BOTH)
        assert problem == "a cloud metadata address"


URL_TABLE: list[tuple[str, UrlPolicy, str | None]] = [
    # Schemes other than http and https
    ("file:///etc/passwd", BOTH, "only http and https"),
    ("gopher://example.com:70/_GET", BOTH, "only http and https"),
    ("ftp://example.com/file", BOTH, "only http and https"),
    ("dict://example.com:11211/", BOTH, "only http and https"),
    ("javascript:alert(1)", BOTH, "only http and https"),
    ("//example.com/no-scheme", BOTH, "only http and https"),
    ("example.com/path", BOTH, "only http and https"),
    ("", BOTH, "only http and https"),
    # No host, or not a URL at all
    ("http:///nohost", BOTH, "no host"),
    ("http://", BOTH, "no host"),
    ("https://user:pw@/path", BOTH, "no host"),
    ("http://[::1/", BOTH, "not a valid URL"),
    ("http://example.com:99999/", BOTH, "not a valid URL"),
    ("http://example.com:port/", BOTH, "not a valid URL"),
    # Literal addresses, in all the forms a resolver reads as one
    ("http://[::1]/", DEFAULT, "loopback"),
    ("http://127.0.0.1:8080/x", DEFAULT, "loopback"),
    ("http://127.0.0.1./", DEFAULT, "loopback"),
    ("http://0x7f000001/", DEFAULT, "loopback"),
    ("http://2130706433/", DEFAULT, "loopback"),
    ("http://127.1/", DEFAULT, "loopback"),
    ("http://0177.0.0.1/", DEFAULT, "loopback"),
    ("http://0/", BOTH, "unspecified"),
    ("http://0.0.0.0:8000/", BOTH, "unspecified"),
    ("http://[::]/", BOTH, "unspecified"),
    ("http://10.0.0.1/", DEFAULT, "private"),
    ("http://0xa9fea9fe/", BOTH, "metadata"),
    ("http://169.254.169.254/latest/meta-data/", BOTH, "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", BOTH, "metadata"),
    ("http://[::ffff:169.254.169.254]/", BOTH, "metadata"),
    ("http://[fe80::1%25eth0]/", BOTH, "link-local"),
    ("http://user:pw@169.254.169.254/", BOTH, "metadata"),
    ("http://224.0.0.1/", BOTH, "multicast"),
    # Allowed
    ("https://example.com/a?b=c", DEFAULT, None),
    ("HTTPS://Example.COM/", DEFAULT, None),
    ("http://8.8.8.8/", DEFAULT, None),
    ("http://[2001:4860:4860::8888]:8080/", DEFAULT, None),
    ("http://localhost/", DEFAULT, None),  # a name: judged after resolution, not here
    ("http://cafe/", DEFAULT, None),  # hex digits, but no number inet_aton would read
    ("http://deadbeef.example/", DEFAULT, None),
    ("http://127.0.0.1:8080/x", LOOPBACK, None),
    ("http://[::1]/", LOOPBACK, None),
    ("http://10.0.0.1/", PRIVATE, None),
]


@pytest.mark.parametrize(("url", "policy", "expected"), URL_TABLE)
def test_url_problem_judges_the_form_of_the_url(
    url: str, policy: UrlPolicy, expected: str | None
) -> None:
    # Given a URL and a policy
    # When its form is checked
    problem = url_problem(url, policy)

    # Then it is refused for the expected reason, or passes
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected in problem


@dataclass
class FakeResolver:
    answers: dict[str, list[str]]
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return list(self.answers[host])


def test_checked_addresses_returns_every_public_address() -> None:
    # Given a host that resolves to two public addresses
    resolve = FakeResolver({"tenant.example": ["8.8.8.8", "2001:4860:4860::8888"]})

    # When its addresses are checked
    addresses = checked_addresses("tenant.example", 443, DEFAULT, resolve)

    # Then both come back, and the resolver was asked once, with the port
    assert addresses == ["8.8.8.8", "2001:4860:4860::8888"]
    assert resolve.calls == [("tenant.example", 443)]


@pytest.mark.parametrize(
    ("answers", "policy", "reason"),
    [
        (["8.8.8.8", "10.0.0.1"], DEFAULT, "private"),
        (["10.0.0.1", "8.8.8.8"], DEFAULT, "private"),
        (["8.8.8.8", "127.0.0.1"], DEFAULT, "loopback"),
        (["8.8.8.8", "169.254.169.254"], BOTH, "metadata"),
        (["2001:4860:4860::8888", "fd00:ec2::254%2"], BOTH, "metadata"),
        (["fe80::1%eth0"], BOTH, "link-local"),
        (["::ffff:127.0.0.1"], DEFAULT, "loopback"),
        (["0.0.0.0"], BOTH, "unspecified"),  # noqa: S104
        ([], BOTH, "no address"),
        (["not-an-address"], BOTH, "not an address"),
    ],
)
def test_checked_addresses_refuses_a_host_with_any_bad_address(
    answers: list[str], policy: UrlPolicy, reason: str
) -> None:
    # Given a host one of whose addresses (or whose lack of any) may not be reached
    resolve = FakeResolver({"mixed.example": answers})

    # When its addresses are checked
    # Then the host is refused as a whole, saying why
    with pytest.raises(BlockedDestination, match=reason):
        checked_addresses("mixed.example", 80, policy, resolve)


def test_checked_addresses_allows_private_addresses_when_the_policy_does() -> None:
    # Given a host inside the private network and a policy that allows it
    resolve = FakeResolver({"intranet.example": ["10.0.0.1", "fd12::1"]})

    # When its addresses are checked
    # Then they are returned
    assert checked_addresses("intranet.example", 80, PRIVATE, resolve) == ["10.0.0.1", "fd12::1"]


@pytest.mark.parametrize(
    "error",
    [
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        OSError("network unreachable"),
        UnicodeError("label too long"),
    ],
)
def test_checked_addresses_refuses_a_host_that_does_not_resolve(error: Exception) -> None:
    # Given a resolver that fails
    def failing(host: str, port: int) -> list[str]:
        raise error

    # When the host's addresses are checked
    # Then it is refused (a BlockedDestination, not the resolver's own error)
    with pytest.raises(BlockedDestination, match="cannot resolve"):
        checked_addresses("nowhere.example", 80, DEFAULT, failing)


def test_guarded_session_ignores_the_environment_and_mounts_the_guard() -> None:
    # Given a guarded session
    session = guarded_session(DEFAULT, resolve=FakeResolver({}))

    # Then proxies and credentials from the environment are not used,
    # and both schemes go through the same guarded adapter
    assert session.trust_env is False
    http_adapter = session.get_adapter("http://example.com/")
    assert http_adapter is session.get_adapter("https://example.com/")
    assert type(http_adapter).__name__ == "GuardedAdapter"


# --- request(): the redirects, over a scripted session (no network) ---


@dataclass
class FakeResponse:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    closed: bool = False

    @property
    def is_redirect(self) -> bool:
        return "location" in self.headers and self.status_code in (301, 302, 303, 307, 308)

    def close(self) -> None:
        self.closed = True


@dataclass
class Call:
    method: str
    url: str
    kwargs: dict[str, Any]


@dataclass
class ScriptedSession:
    """Answers each URL as scripted (200 when not scripted) and records every call."""

    script: dict[str, FakeResponse] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        self.calls.append(Call(method, url, kwargs))
        return self.script.get(url, FakeResponse(200))


def moved(location: str, status: int = 302) -> FakeResponse:
    return FakeResponse(status, {"location": location})


def test_request_refuses_a_bad_url_before_any_call() -> None:
    # Given a session
    session = ScriptedSession()

    # When a metadata URL is requested
    # Then it is refused and the session is never used
    with pytest.raises(BlockedDestination, match="metadata"):
        request("GET", "http://169.254.169.254/latest/meta-data/", BOTH, session=session)
    assert session.calls == []


def test_request_passes_timeouts_and_never_lets_requests_follow_redirects() -> None:
    # Given a session
    session = ScriptedSession()

    # When a URL is requested without a timeout, then with one
    request("GET", "https://a.example/", DEFAULT, session=session)
    request("GET", "https://a.example/", DEFAULT, session=session, timeout=(0.5, 1.5))

    # Then each call has a connect and a read timeout, and redirects are left to the guard
    assert session.calls[0].kwargs["timeout"] == (HTTP_CONNECT_SECONDS, HTTP_READ_SECONDS)
    assert session.calls[1].kwargs["timeout"] == (0.5, 1.5)
    assert all(call.kwargs["allow_redirects"] is False for call in session.calls)


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://127.0.0.1:8080/admin", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("//169.254.169.254/", "metadata"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://a.example/", "only http and https"),
    ],
)
def test_request_refuses_a_redirect_to_a_forbidden_place(location: str, reason: str) -> None:
    # Given a public URL that redirects somewhere forbidden
    first = moved(location)
    session = ScriptedSession({"https://a.example/start": first})

    # When it is requested
    # Then the redirect is refused, after the first call only, whose response is closed
    with pytest.raises(BlockedDestination, match=reason):
        request("GET", "https://a.example/start", DEFAULT, session=session)
    assert [call.url for call in session.calls] == ["https://a.example/start"]
    assert first.closed


def chain(length: int) -> dict[str, FakeResponse]:
    return {f"https://a.example/{n}": moved(f"/{n + 1}") for n in range(length)}


def test_request_follows_at_most_max_redirects() -> None:
    # Given chains of exactly MAX_REDIRECTS and of one more
    exact = ScriptedSession(chain(MAX_REDIRECTS))
    too_long = ScriptedSession(chain(MAX_REDIRECTS + 1))

    # When each is requested
    response = request("GET", "https://a.example/0", DEFAULT, session=exact)

    # Then the first ends at its last URL, and the second is refused
    assert response.status_code == 200
    assert exact.calls[-1].url == f"https://a.example/{MAX_REDIRECTS}"
    with pytest.raises(BlockedDestination, match="redirects"):
        request("GET", "https://a.example/0", DEFAULT, session=too_long)
    assert len(too_long.calls) == MAX_REDIRECTS + 1


def test_request_resolves_a_relative_location_against_the_current_url() -> None:
    # Given a redirect to a relative path
    session = ScriptedSession({"https://a.example/dir/page?x=1": moved("../other")})

    # When it is requested
    request("GET", "https://a.example/dir/page?x=1", DEFAULT, session=session)

    # Then the second call is to the resolved URL
    assert session.calls[1].url == "https://a.example/other"


@pytest.mark.parametrize(
    ("current", "target", "kept"),
    [
        ("https://a.example/x", "https://a.example/y", True),
        ("https://a.example/x", "https://A.EXAMPLE:443/y", True),
        ("http://a.example/x", "https://a.example/y", True),  # upgrade, as requests allows
        ("https://a.example/x", "https://b.example/y", False),
        ("https://a.example/x", "https://a.example.evil.example/y", False),
        ("https://a.example/x", "https://a.example:8443/y", False),
        ("https://a.example/x", "http://a.example/y", False),  # downgrade to plain text
        ("http://a.example:8080/x", "https://a.example/y", False),
    ],
)
def test_request_drops_credentials_when_a_redirect_leaves_the_origin(
    current: str, target: str, kept: bool
) -> None:
    # Given a redirect, and a call with credentials of every kind
    session = ScriptedSession({current: moved(target)})
    headers = {"authorization": "Bearer s3cret", "Cookie": "sid=1", "X-Trace": "t"}

    # When it is requested
    request("GET", current, DEFAULT, session=session, auth=("user", "pw"), headers=headers)

    # Then the second call has them only if it stays on the same origin
    second = session.calls[1].kwargs
    if kept:
        assert second["auth"] == ("user", "pw")
        assert second["headers"] == headers
    else:
        assert second["auth"] != ("user", "pw")
        assert callable(second["auth"])  # a no-op, so that a session's auth is not used either
        assert second["headers"]["X-Trace"] == "t"
        # None removes the header the session would otherwise add
        assert second["headers"]["Authorization"] is None
        assert second["headers"]["Cookie"] is None
        assert "authorization" not in second["headers"]


def test_request_sends_query_parameters_to_the_first_url_only() -> None:
    # Given a redirect, and a call with query parameters
    session = ScriptedSession({"https://a.example/start": moved("/next?page=2")})

    # When it is requested
    request("GET", "https://a.example/start", DEFAULT, session=session, params={"page": "1"})

    # Then the parameters go with the first call, and the Location's own query with the second
    assert session.calls[0].kwargs["params"] == {"page": "1"}
    assert "params" not in session.calls[1].kwargs
    assert session.calls[1].url == "https://a.example/next?page=2"


@pytest.mark.parametrize(
    ("method", "status", "then_method", "body_kept"),
    [
        ("POST", 301, "GET", False),
        ("POST", 302, "GET", False),
        ("POST", 303, "GET", False),
        ("POST", 307, "POST", True),
        ("POST", 308, "POST", True),
        ("HEAD", 302, "HEAD", True),
    ],
)
def test_request_rewrites_the_method_as_browsers_do(
    method: str, status: int, then_method: str, body_kept: bool
) -> None:
    # Given a redirect of some status, and a call with a body
    session = ScriptedSession({"https://a.example/in": moved("/out", status)})

    # When it is requested
    request(method, "https://a.example/in", DEFAULT, session=session, json={"a": 1})

    # Then the second call keeps or drops the method and the body as the status says
    second = session.calls[1]
    assert second.method == then_method
    assert ("json" in second.kwargs) is body_kept


def test_request_drops_files_when_a_post_becomes_a_get() -> None:
    # Given a 303 answer to an upload
    session = ScriptedSession({"https://a.example/up": moved("/done", 303)})

    # When it is requested
    request("POST", "https://a.example/up", DEFAULT, session=session, files={"f": b"x"})

    # Then the GET that follows carries no file
    assert session.calls[1].method == "GET"
    assert "files" not in session.calls[1].kwargs
