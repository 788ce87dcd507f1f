"""HTTP calls to tenant-controlled URLs (attachments, delivery reports), guarded against SSRF.

A tenant chooses these URLs, so the proxy must never be made to reach its own network: only
http and https; never loopback, private, link-local, multicast or reserved addresses, and never
a cloud metadata endpoint. The check runs on the address actually connected to, after DNS
resolution, for every hop of a redirect, so neither DNS rebinding nor a redirect gets around it.
Local mode allows loopback (the user's own servers are there); a deployment never does unless
configured to.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit

from mailproxy.timeouts import HTTP_CONNECT_SECONDS, HTTP_READ_SECONDS

ALLOWED_SCHEMES = frozenset({"http", "https"})
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# Networks whose addresses carry an IPv4 address a packet may end up at: NAT64 (RFC 6052 well-known
# prefix: a NAT64 gateway forwards to the embedded address) and IPv4-compatible IPv6 (deprecated).
NAT64_NETWORK = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE_NETWORK = ipaddress.ip_network("::/96")
# "This network" (RFC 791): connecting to 0.0.0.0 reaches the host itself on Linux.
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_REDIRECTS = 5

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class BlockedDestination(Exception):
    """The URL, or an address it resolves or redirects to, may not be reached."""


@dataclass(frozen=True)
class UrlPolicy:
    allow_loopback: bool = False
    allow_private: bool = False


def address_problem(address: IpAddress, policy: UrlPolicy) -> str | None:
    """Why this address may not be reached, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        # A scope (fe80::1%eth0) changes neither where a packet goes nor what the address is,
        # but it makes the address compare unequal to the metadata address.
        address = ipaddress.IPv6Address(int(address))
        if address.ipv4_mapped is not None:
            return address_problem(address.ipv4_mapped, policy)
        if address in NAT64_NETWORK:
            return address_problem(_low_ipv4(address), policy)
        embedded = address.sixtofour
        if embedded is None and address in IPV4_COMPATIBLE_NETWORK and int(address) > 1:
            embedded = _low_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded, policy)
            if problem:
                return f"{problem} (embedded in {address})"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if policy.allow_loopback else "a loopback address"
    if address.is_unspecified or address in THIS_NETWORK:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    if address.is_private or address.is_reserved or site_local or not address.is_global:
        return None if policy.allow_private else "a private or reserved address"
    return None


def _low_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def _literal_address(host: str) -> IpAddress | None:
    """The address a host name stands for without any lookup, as the resolver reads it: besides
    the usual forms, the IPv4 shorthands inet_aton accepts (127.1, 0x7f000001, 2130706433)."""
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or any(c not in "0123456789abcdefABCDEFxX." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def url_problem(url: str, policy: UrlPolicy) -> str | None:
    """A check of the URL's form (scheme, host, literal address) without any network use."""
    try:
        parts = urlsplit(url)
    except ValueError as error:
        return f"not a valid URL ({error})"
    if parts.scheme not in ALLOWED_SCHEMES:
        return "only http and https URLs are allowed"
    host = parts.hostname
    if not host:
        return "the URL has no host"
    try:
        _ = parts.port  # a port that is not a number in range raises ValueError
    except ValueError as error:
        return f"not a valid URL ({error})"
    literal = _literal_address(host)
    if literal is None:
        return None
    problem = address_problem(literal, policy)
    return f"{host} is {problem}" if problem else None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def checked_addresses(host: str, port: int, policy: UrlPolicy, resolve: Resolver) -> list[str]:
    """Every address the host resolves to, if all of them may be reached."""
    try:
        addresses = resolve(host, port)
    except (OSError, ValueError) as error:  # ValueError: UnicodeError for a bad IDNA label
        raise BlockedDestination(f"cannot resolve {host}: {error}") from error
    if not addresses:
        raise BlockedDestination(f"{host} resolves to no address")
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError as error:
            raise BlockedDestination(f"{host} resolves to {text!r}, not an address") from error
        problem = address_problem(address, policy)
        if problem:
            raise BlockedDestination(f"{host} resolves to {text}, {problem}")
    return addresses


def _adapter_class(policy: UrlPolicy, resolve: Resolver) -> type:
    # Any callable is a resolver, and not every callable can be a cache key (a dataclass
    # instance, say): those get a class of their own.
    if isinstance(resolve, Hashable):
        return _cached_adapter_class(policy, resolve)
    return _new_adapter_class(policy, resolve)


@lru_cache(maxsize=8)
def _cached_adapter_class(policy: UrlPolicy, resolve: Resolver) -> type:
    return _new_adapter_class(policy, resolve)


def _new_adapter_class(policy: UrlPolicy, resolve: Resolver) -> type:
    # Imported here: requests/urllib3 are needed only by the paths that make such calls.
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
    from urllib3.util import connection as urllib3_connection

    def guarded_new_conn(self: Any) -> socket.socket:
        # Connect to an address that was checked, not to whatever a second lookup returns.
        last_error: OSError | None = None
        for address in checked_addresses(self._dns_host, self.port, policy, resolve):
            try:
                sock: socket.socket = urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as error:
                last_error = error
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        # The errors urllib3's own _new_conn raises, so that requests reports a ConnectTimeout or
        # a ConnectionError as for any other call (a raw OSError would become "Connection
        # aborted", and a connect timeout a read timeout).
        if isinstance(last_error, TimeoutError):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from last_error
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {last_error}"
        ) from last_error

    guarded_http = type("GuardedHTTPConnection", (HTTPConnection,), {"_new_conn": guarded_new_conn})
    guarded_https = type(
        "GuardedHTTPSConnection", (HTTPSConnection,), {"_new_conn": guarded_new_conn}
    )
    http_pool = type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": guarded_http})
    https_pool = type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": guarded_https})

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            # Through a proxy, the address checked would be the proxy's, never the destination's.
            raise BlockedDestination(f"a proxy ({proxy}) may not be used for a guarded call")

    return GuardedAdapter


def guarded_session(policy: UrlPolicy, resolve: Resolver = system_resolver) -> Any:
    import requests

    session = requests.Session()
    # A proxy from the environment would make the proxy's address the one checked.
    session.trust_env = False
    adapter = _adapter_class(policy, resolve)()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def request(
    method: str,
    url: str,
    policy: UrlPolicy,
    *,
    session: Any = None,
    timeout: tuple[float, float] = (HTTP_CONNECT_SECONDS, HTTP_READ_SECONDS),
    **kwargs: Any,
) -> Any:
    """One HTTP call, its redirects followed by hand (each hop checked), at most
    MAX_REDIRECTS of them. Raises BlockedDestination or requests' own errors."""
    session = session or guarded_session(policy)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        problem = url_problem(current, policy)
        if problem:
            raise BlockedDestination(f"{current}: {problem}")
        response = session.request(
            method, current, timeout=timeout, allow_redirects=False, **kwargs
        )
        if not response.is_redirect:
            return response
        target = urljoin(current, response.headers["location"])
        # The query parameters were for the first URL; the Location carries its own.
        kwargs.pop("params", None)
        if not _keeps_credentials(current, target):
            # The tenant's credentials are for its own host, never for where it points us.
            kwargs = _without_credentials(kwargs)
        if response.status_code in (301, 302, 303) and method != "HEAD":
            method = "GET"
            kwargs = {k: v for k, v in kwargs.items() if k not in ("json", "data", "files")}
        response.close()
        current = target
    raise BlockedDestination(f"more than {MAX_REDIRECTS} redirects from {url}")


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        port = -1
    return parts.scheme, parts.hostname, port


def _keeps_credentials(current: str, target: str) -> bool:
    """Whether credentials meant for `current` may go to `target`: the same origin, or (as
    requests allows) the same host upgraded from http on port 80 to https on port 443."""
    old, new = _origin(current), _origin(target)
    return old == new or (old == ("http", new[1], 80) and new == ("https", old[1], 443))


def _no_auth(prepared: Any) -> Any:
    return prepared


def _without_credentials(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments without its credentials, nor the session's: an explicit no-op auth
    and None headers are what keep requests from merging in the session's auth and headers."""
    cleaned = dict(kwargs, auth=_no_auth)
    headers = {
        key: value
        for key, value in (kwargs.get("headers") or {}).items()
        if key.lower() not in CREDENTIAL_HEADERS
    }
    cleaned["headers"] = headers | dict.fromkeys(("Authorization", "Proxy-Authorization", "Cookie"))
    return cleaned
