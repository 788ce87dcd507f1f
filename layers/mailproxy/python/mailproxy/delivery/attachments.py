"""Fetching attachment contents for the sender; any failure is permanent for the message.

Four sources (SPEC.md, "Message"): inline base64; an http(s) URL; an object in an S3 bucket of
the deployment's allow-list; the tenant's attachment endpoint (a POST {"storage_path": ...} to
client_base_url + client_attachment_path, with the tenant's credentials). The URL and the
endpoint are chosen by the tenant, so both go through the SSRF guard of outbound_http.

A message's attachments are fetched at most `max_parallel` at a time, in the order given; the
first failure stops the others. Each fetch has an overall deadline (connection, redirects and
body together), and the contents of all of a message's attachments together are capped: both
are enforced while the bytes arrive, never after.

The decisions (which mode, which problems show before any I/O, credentials, the S3 location, an
endpoint's answer, the md5 check) are small pure functions; the rest moves bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from mailproxy.delivery.mime import FetchedAttachment
from mailproxy.domain.errors import DeliveryError
from mailproxy.domain.message import Attachment
from mailproxy.domain.s3_uri import parse_s3_uri, s3_uri
from mailproxy.domain.tenant import Tenant
from mailproxy.outbound_http import (
    BlockedDestination,
    UrlPolicy,
    guarded_session,
    request,
    url_problem,
)
from mailproxy.secret_box import client_auth_context
from mailproxy.timeouts import ATTACHMENT_FETCH_SECONDS, HTTP_CONNECT_SECONDS

FETCH_MODES = frozenset({"base64", "http_url", "s3", "endpoint"})
# Decoded bytes, all of a message's attachments together: what common mail servers accept.
DEFAULT_MAX_TOTAL_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_PARALLEL = 3
CHUNK_BYTES = 64 * 1024
# What a JSON answer of the endpoint may hold besides the base64 content, not counted as content.
JSON_ALLOWANCE_BYTES = 1024
# How long past its deadline a running fetch has to report its own failure before the caller
# stops waiting for it (and cuts its connection), and how often the caller looks.
_GRACE_SECONDS = 0.2
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class EndpointAuth:
    """The tenant's client_auth with its secret opened: method none | bearer | basic; `secret`
    is the bearer token or the basic password, in the clear (never shown by repr)."""

    method: str = "none"
    user: str | None = None
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class FetchContext:
    """What one message's fetches may use.

    `s3_client` is a boto3 S3 client, or a function of no arguments returning one (called only
    when an s3 attachment is fetched). `session` must be an outbound_http.guarded_session when
    given (a plain requests session would skip the address check made on connect); without it,
    each fetch uses a guarded session of its own for `url_policy`. `modes` are the fetch modes
    allowed at all.
    """

    url_policy: UrlPolicy
    s3_buckets: frozenset[str] = frozenset()
    s3_client: Any | None = None
    endpoint_url: str | None = None
    endpoint_auth: EndpointAuth = EndpointAuth()
    session: Any | None = None
    timeout_seconds: float = ATTACHMENT_FETCH_SECONDS
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_parallel: int = DEFAULT_MAX_PARALLEL
    modes: frozenset[str] = FETCH_MODES

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if self.max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        if self.max_total_bytes < 0:
            raise ValueError("max_total_bytes cannot be negative")
        unknown = self.modes - FETCH_MODES
        if unknown:
            raise ValueError(f"unknown fetch modes: {sorted(unknown)}")


# What the sender can do without being told where else to look: inline contents only.
INLINE_ONLY = FetchContext(url_policy=UrlPolicy(), modes=frozenset({"base64"}))


# -- wiring helpers -------------------------------------------------------------------------------


def tenant_endpoint_url(tenant: Tenant) -> str | None:
    """client_base_url + client_attachment_path, or None when the tenant has no base URL."""
    if not tenant.client_base_url:
        return None
    return tenant.client_base_url.rstrip("/") + "/" + tenant.client_attachment_path.lstrip("/")


def tenant_endpoint_auth(
    tenant: Tenant, open_secret: Callable[[str, dict[str, str]], str]
) -> EndpointAuth:
    """The tenant's credentials for its endpoint; `open_secret` is SecretBox.open."""
    stored = tenant.client_auth
    secret = (
        open_secret(stored.sealed_secret, client_auth_context(tenant.id))
        if stored.sealed_secret
        else None
    )
    return EndpointAuth(stored.method, stored.user, secret)


def uses_endpoint(attachments: list[Attachment]) -> bool:
    """Whether the tenant's endpoint (and so its opened secret) is needed at all."""
    return any(attachment.resolved_fetch_mode == "endpoint" for attachment in attachments)


# -- decisions ------------------------------------------------------------------------------------


def fetch_failure(attachment: Attachment, detail: str) -> DeliveryError:
    return DeliveryError(
        f"Attachment fetch failed for {attachment.filename}: {detail}", temporary=False
    )


def precheck(attachment: Attachment, ctx: FetchContext) -> str | None:
    """Why this attachment cannot be fetched, as far as that shows without any I/O."""
    mode = attachment.resolved_fetch_mode
    if mode not in ctx.modes:
        return f"fetch mode {mode!r} is not enabled"
    if mode == "http_url":
        problem = url_problem(attachment.storage_path, ctx.url_policy)
        return f"destination not allowed ({problem})" if problem else None
    if mode == "s3":
        try:
            bucket, _ = parse_s3_uri(attachment.storage_path)
        except ValueError as error:
            return str(error)
        if bucket not in ctx.s3_buckets:
            return f"S3 bucket {bucket!r} is not allowed"
        if ctx.s3_client is None:
            return "S3 attachments are not configured"
    if mode == "endpoint" and not ctx.endpoint_url:
        return "the tenant has no client_base_url to fetch endpoint attachments from"
    return None


def decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"invalid base64 ({error})") from error


def md5_problem(content: bytes, expected: str | None) -> str | None:
    if expected and hashlib.md5(content, usedforsecurity=False).hexdigest() != expected.lower():
        return "content_md5 does not match the content"
    return None


def credential_headers(method: str, user: str | None, secret: str | None) -> dict[str, str]:
    """The Authorization header for none | bearer | basic; ValueError when incomplete. Basic
    credentials are UTF-8 (RFC 7617). No message quotes a secret."""
    if method == "none":
        return {}
    if method == "bearer":
        if not secret:
            raise ValueError("bearer auth needs a token")
        _check_header_text(secret, "the bearer token")
        return {"Authorization": f"Bearer {secret}"}
    if method == "basic":
        if not user or secret is None:
            raise ValueError("basic auth needs a user and a password")
        if ":" in user:
            raise ValueError("a basic auth user cannot contain ':'")
        pair = base64.b64encode(f"{user}:{secret}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    raise ValueError(f"unknown auth method {method!r}")


def _check_header_text(value: str, what: str) -> None:
    if value != value.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{what} holds whitespace at an end or a control character")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} holds characters a header cannot carry") from None


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def endpoint_content(body: bytes, content_type: str | None) -> bytes:
    """The attachment in an endpoint's answer: the raw bytes, or, for a JSON answer
    {"content": "<base64>"}, the decoded content (any other JSON is the file itself)."""
    if not is_json(content_type):
        return body
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    if isinstance(answer, dict) and isinstance(answer.get("content"), str):
        return decode_base64(answer["content"])
    return body


def size_limit_detail(limit: int) -> str:
    return f"the attachments of a message may total at most {limit} bytes"


# -- fetching -------------------------------------------------------------------------------------


class _Failure(Exception):
    """Why one fetch failed; the caller turns it into the message's DeliveryError."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Stopped(Exception):
    """Another attachment of the message failed first: this fetch gave up, and its outcome
    does not matter (the caller reports that first failure)."""


class _SizeBudget:
    """The bytes a message's attachments may still take; shared by its parallel fetches."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def room(self) -> int:
        with self._lock:
            return self.limit - self._used

    def take(self, count: int) -> None:
        with self._lock:
            if self._used + count > self.limit:
                raise _Failure(size_limit_detail(self.limit))
            self._used += count

    def give_back(self, count: int) -> None:
        with self._lock:
            self._used -= count


class _Deadline:
    def __init__(self, seconds: float, stop: threading.Event) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self._stop = stop

    def remaining(self) -> float:
        """Seconds left; a failure once none are, or once another attachment failed."""
        if self._stop.is_set():
            raise _Stopped
        left = self._at - time.monotonic()
        if left <= 0:
            raise _Failure(timeout_detail(self.seconds))
        return left


def timeout_detail(seconds: float) -> str:
    return f"timed out after {seconds:g} s"


class _Watch:
    """The HTTP responses of one fetch, so that the caller can cut a read that is stuck."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._responses: list[Any] = []
        self.aborted = False

    def track(self, response: Any) -> None:
        with self._lock:
            self._responses.append(response)
            if self.aborted:
                _cut(response)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            for response in self._responses:
                _cut(response)


def _cut(response: Any) -> None:
    """Shut the response's socket down: a read blocked on it returns at once (closing it from
    another thread would not wake the reader)."""
    connection = getattr(getattr(response, "raw", None), "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _TimedSession:
    """The session outbound_http.request calls once per hop: each hop gets what is left of the
    fetch's deadline, and each response is watched."""

    def __init__(self, session: Any, deadline: _Deadline, watch: _Watch) -> None:
        self._session = session
        self._deadline = deadline
        self._watch = watch

    def request(self, method: str, url: str, *, timeout: Any = None, **kwargs: Any) -> Any:
        left = self._deadline.remaining()
        response = self._session.request(
            method, url, timeout=(min(HTTP_CONNECT_SECONDS, left), left), **kwargs
        )
        self._watch.track(response)
        return response


@dataclass
class _Run:
    """One message's fetches: the context, the shared byte budget, the stop signal."""

    ctx: FetchContext
    size: _SizeBudget
    stop: threading.Event = field(default_factory=threading.Event)


def _fetch(attachment: Attachment, run: _Run, watch: _Watch) -> FetchedAttachment:
    deadline = _Deadline(run.ctx.timeout_seconds, run.stop)
    try:
        content = _content(attachment, run, deadline, watch)
        if watch.aborted:
            raise _Stopped
        problem = md5_problem(content, attachment.content_md5)
        if problem:
            raise _Failure(problem)
    except _Failure as failure:
        raise fetch_failure(attachment, failure.detail) from None
    return FetchedAttachment(attachment.filename, content, attachment.mime_type)


def _content(attachment: Attachment, run: _Run, deadline: _Deadline, watch: _Watch) -> bytes:
    mode = attachment.resolved_fetch_mode
    if mode == "base64":
        try:
            content = decode_base64(attachment.storage_path.removeprefix("base64:"))
        except ValueError as error:
            raise _Failure(str(error)) from None
        run.size.take(len(content))
        return content
    if mode == "s3":
        return _s3_content(attachment, run, deadline)
    if mode == "http_url":
        try:
            headers = _attachment_credentials(attachment)
        except ValueError as error:
            raise _Failure(str(error)) from None
        return _http_content("GET", attachment.storage_path, headers, None, run, deadline, watch)
    auth = run.ctx.endpoint_auth
    try:
        headers = credential_headers(auth.method, auth.user, auth.secret)
    except ValueError as error:
        raise _Failure(f"the tenant's client_auth: {error}") from None
    assert run.ctx.endpoint_url is not None  # precheck
    payload = {"storage_path": attachment.storage_path}
    return _http_content("POST", run.ctx.endpoint_url, headers, payload, run, deadline, watch)


def _attachment_credentials(attachment: Attachment) -> dict[str, str]:
    auth = attachment.auth
    if auth is None:
        return {}
    chosen = {"bearer": auth.token, "basic": auth.password}.get(auth.method)
    secret = chosen.get_secret_value() if chosen is not None else None
    return credential_headers(auth.method, auth.user, secret)


def _http_content(
    method: str,
    url: str,
    headers: dict[str, str],
    payload: dict[str, str] | None,
    run: _Run,
    deadline: _Deadline,
    watch: _Watch,
) -> bytes:
    import requests

    where = "the tenant's attachment endpoint" if payload is not None else "the URL"
    own_session = run.ctx.session is None
    session: Any = guarded_session(run.ctx.url_policy) if own_session else run.ctx.session
    response: Any = None
    try:
        response = request(
            method,
            url,
            run.ctx.url_policy,
            session=_TimedSession(session, deadline, watch),
            headers={"Accept-Encoding": "identity", **headers},
            json=payload,
            stream=True,
        )
        if not 200 <= response.status_code < 300:
            raise _Failure(f"HTTP {response.status_code} {response.reason or ''} from {where}")
        json_answer = payload is not None and is_json(response.headers.get("Content-Type"))
        body, charged = _read_body(response, run, deadline, json_answer)
        if not json_answer:
            return body
        try:
            content = endpoint_content(body, response.headers.get("Content-Type"))
        except ValueError as error:
            raise _Failure(f"{where} answered JSON with {error}") from None
        _settle(run.size, charged, len(content))
        return content
    except BlockedDestination as error:
        raise _Failure(f"destination not allowed ({error})") from None
    except requests.Timeout:
        raise _Failure(timeout_detail(deadline.seconds)) from None
    except requests.RequestException as error:
        if watch.aborted:
            raise _Stopped from None
        raise _Failure(f"HTTP request to {where} failed ({error})") from None
    finally:
        if response is not None:
            response.close()
        if own_session:
            session.close()


def _read_body(
    response: Any, run: _Run, deadline: _Deadline, json_answer: bool
) -> tuple[bytes, int]:
    """The body, counted against the message's budget as it arrives. A JSON answer carries
    base64: charged at the 3/4 it decodes to, less an allowance for the JSON around it (settled
    once decoded). Returns (body, bytes charged)."""

    def charge(received: int) -> int:
        if not json_answer:
            return received
        return max(0, (received - JSON_ALLOWANCE_BYTES) * 3 + 3) // 4

    declared = response.headers.get("Content-Length")
    encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
    if declared and declared.isdigit() and not encoded and charge(int(declared)) > run.size.room():
        raise _Failure(size_limit_detail(run.size.limit))
    parts: list[bytes] = []
    received = charged = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        deadline.remaining()
        received += len(chunk)
        cost = charge(received) - charged
        run.size.take(cost)
        charged += cost
        parts.append(chunk)
    return b"".join(parts), charged


def _settle(size: _SizeBudget, charged: int, actual: int) -> None:
    if actual > charged:
        size.take(actual - charged)
    else:
        size.give_back(charged - actual)


def _s3_client(ctx: FetchContext) -> Any:
    client = ctx.s3_client
    if client is not None and not hasattr(client, "get_object") and callable(client):
        client = client()
    return client


def _s3_content(attachment: Attachment, run: _Run, deadline: _Deadline) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(attachment.storage_path)  # checked by precheck
    deadline.remaining()
    try:
        response = _s3_client(run.ctx).get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise _Failure(f"S3 {code} for {s3_uri(bucket, key)}") from None
    except (BotoCoreError, OSError) as error:
        raise _Failure(f"S3 request failed ({error})") from None
    body = response["Body"]
    parts: list[bytes] = []
    try:
        length = response.get("ContentLength")
        if isinstance(length, int) and length > run.size.room():
            raise _Failure(size_limit_detail(run.size.limit))
        while chunk := body.read(CHUNK_BYTES):
            deadline.remaining()
            run.size.take(len(chunk))
            parts.append(chunk)
    except (BotoCoreError, OSError) as error:
        raise _Failure(f"S3 read failed ({error})") from None
    finally:
        body.close()
    return b"".join(parts)


# -- the message's attachments --------------------------------------------------------------------


@dataclass
class _Task:
    index: int
    attachment: Attachment
    watch: _Watch = field(default_factory=_Watch)
    started: float | None = None


def fetch_all(
    attachments: list[Attachment], ctx: FetchContext | None = None
) -> list[FetchedAttachment]:
    """The contents, in the order given. Raises the DeliveryError (permanent) of the first
    failure. Without a context only inline (base64) contents are allowed."""
    ctx = ctx or INLINE_ONLY
    for attachment in attachments:
        problem = precheck(attachment, ctx)
        if problem:
            raise fetch_failure(attachment, problem)
    run = _Run(ctx, _SizeBudget(ctx.max_total_bytes))
    if all(attachment.resolved_fetch_mode == "base64" for attachment in attachments):
        return [_fetch(attachment, run, _Watch()) for attachment in attachments]
    return _fetch_in_parallel([_Task(i, a) for i, a in enumerate(attachments)], run)


def fetch_one(attachment: Attachment, ctx: FetchContext | None = None) -> FetchedAttachment:
    return fetch_all([attachment], ctx)[0]


def _fetch_in_parallel(tasks: list[_Task], run: _Run) -> list[FetchedAttachment]:
    def work(task: _Task) -> FetchedAttachment:
        task.started = time.monotonic()
        if run.stop.is_set():
            raise _Stopped
        try:
            return _fetch(task.attachment, run, task.watch)
        except BaseException:
            run.stop.set()  # no other fetch starts, even before the caller hears of this one
            raise

    results: list[FetchedAttachment | None] = [None] * len(tasks)
    pool = ThreadPoolExecutor(
        max_workers=min(run.ctx.max_parallel, len(tasks)), thread_name_prefix="attachment-fetch"
    )
    try:
        futures: dict[Future[FetchedAttachment], _Task] = {
            # In a copy of the caller's context: what it set (the running function, which
            # local mode's AWS call records name) holds in the fetches too.
            pool.submit(contextvars.copy_context().run, work, task): task
            for task in tasks
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: futures[f].index):
                if isinstance(future.exception(), _Stopped):
                    continue  # the failure that stopped it is reported instead
                results[futures[future].index] = future.result()
            _raise_if_overdue([futures[future] for future in pending], run.ctx)
    except BaseException:
        # Stop the others: no new fetch starts, running ones stop at their next step, and a
        # read stuck on a socket is cut.
        run.stop.set()
        for task in tasks:
            task.watch.abort()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [result for result in results if result is not None]


def _raise_if_overdue(running: list[_Task], ctx: FetchContext) -> None:
    """A fetch past its deadline that has not said so (stuck where no timeout reaches it)."""
    now = time.monotonic()
    limit = ctx.timeout_seconds + _GRACE_SECONDS
    for task in sorted(running, key=lambda t: t.index):
        if task.started is not None and now - task.started > limit:
            raise fetch_failure(task.attachment, timeout_detail(ctx.timeout_seconds))
