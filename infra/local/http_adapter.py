"""The API on a local port: each HTTP request becomes the API Gateway event that the real
api handler gets on AWS, and its result becomes the HTTP response.

waitress serves it: connections are read and written by one asyncore thread, so a slow or
silent client holds no worker; a request reaches a worker only once it is complete."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import RequestEntityTooLarge

from infra.local.events import LambdaContext, http_event

log = logging.getLogger("mailproxy.local.http")
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
# A client still sending when it is refused must get to read its 413: closing a socket with
# unread input sends a TCP reset, which may destroy the answer at the client. So waitress
# takes in (to a temporary file) bodies up to this bound before the 413 goes out; past it,
# waitress refuses at once and the client may see a reset.
DISCARD_BODY_BYTES = 64 * 1024 * 1024
IDLE_TIMEOUT = 30.0  # a connection silent this long (mid-request or between requests) is dropped
TOO_LARGE = {"detail": "Request body too large"}
# WSGI forbids an application to set these (waitress asserts so); Content-Length is redone
# from the decoded body.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
_CLOSE = "mailproxy.close_connection"

LocalRoute = Callable[[str], tuple[int, Any] | None]
ApiHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class HttpFront:
    """The API's listening socket and its threads: start() serves in the background."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.run, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        server = self._server

        def close_all() -> None:
            for channel in list(server.active_channels.values()):
                channel.handle_close()
            server.close()  # with its trigger: the loop ends once nothing is left to watch

        # The workers first: one finishing a response pulls the trigger, which must still be
        # open then (closed under it, the worker dies with EBADF).
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
        # waitress has no stop() for a server run in a thread, and asyncore is not
        # thread-safe: the close runs on the loop's own thread.
        server.trigger.pull_trigger(close_all)
        self._thread.join(timeout)


def make_server(
    port: int,
    api_handler: ApiHandler,
    local_routes: LocalRoute,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
) -> HttpFront:
    # Waitress warns "Task queue depth" whenever every worker is busy: under the invocation
    # lock below that is the normal state, not news; its INFO lines are per connection.
    logging.getLogger("waitress").setLevel(logging.WARNING)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(
        _application(api_handler, local_routes),
        host="127.0.0.1",
        port=port,
        ipv6=False,
        # Workers mostly wait on the invocation lock; enough of them that local routes and a
        # burst of short requests queue behind it in waitress, not in the kernel.
        threads=16,
        # The SMTP senders and moto share the GIL: connections arrive faster than the loop
        # thread accepts them in bursts, and a full backlog means refused connections.
        backlog=1024,
        connection_limit=1000,
        asyncore_use_poll=True,  # select() stops at 1024 descriptors
        channel_timeout=idle_timeout,
        cleanup_interval=max(1.0, min(5.0, idle_timeout / 2)),
        max_request_body_size=DISCARD_BODY_BYTES,
        ident="mailproxy-local",
        expose_tracebacks=False,
    )
    # The WSGI application cannot ask for the connection to be closed (Connection is a
    # hop-by-hop header): waitress's task and channel classes are the place it allows that.
    server.channel_class = _Channel
    return HttpFront(server)


def _application(api_handler: ApiHandler, local_routes: LocalRoute) -> Callable[..., Any]:
    # One execution environment: Lambda never runs two invocations in one at once.
    invocation_lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        # An HTTP API hands over the path percent-decoded (rawPath and http.path alike) and the
        # query as sent (rawQueryString); PATH_INFO is decoded as latin-1, so the path is
        # decoded here, as UTF-8, from the request target as sent.
        target = urlsplit(environ["REQUEST_URI"])
        path, query = unquote(target.path or "/"), target.query
        # waitress has read a chunked body in full by now and set its length here.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            environ[_CLOSE] = True
            return _reply_json(start_response, method, 413, TOO_LARGE)
        body = environ["wsgi.input"].read(length) if length else None
        if path.startswith("/local/"):
            local = local_routes(f"{method} {path}")
            if local is not None:
                return _reply_json(start_response, method, *local)
        event = http_event(method, path, query=query, headers=_headers(environ), body=body)
        try:
            with invocation_lock:
                response = api_handler(event, LambdaContext(function_name="mailproxy-api"))
        except Exception:
            log.exception("api handler failed")
            return _reply_json(start_response, method, 500, {"message": "Internal Server Error"})
        raw = response.get("body") or ""
        payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
        headers = [
            (key, str(value))
            for key, value in (response.get("headers") or {}).items()
            if key.lower() not in HOP_BY_HOP
        ]
        for key, values in (response.get("multiValueHeaders") or {}).items():
            if key.lower() not in HOP_BY_HOP:
                headers += [(key, str(value)) for value in values]
        headers += [("Set-Cookie", str(cookie)) for cookie in response.get("cookies") or []]
        return _reply(
            start_response, method, int(response.get("statusCode", 200)), headers, payload
        )

    return application


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    # waitress has already joined repeated headers with ", ", as API Gateway does.
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _reply(
    start_response: StartResponse,
    method: str,
    status: int,
    headers: list[tuple[str, str]],
    payload: bytes,
) -> list[bytes]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    start_response(f"{status} {phrase}", [*headers, ("Content-Length", str(len(payload)))])
    # waitress would send a HEAD answer's body (it leaves that to the application).
    return [] if method == "HEAD" else [payload]


def _reply_json(start_response: StartResponse, method: str, status: int, body: Any) -> list[bytes]:
    payload = json.dumps(body).encode()
    return _reply(start_response, method, status, [("Content-Type", "application/json")], payload)


class _Task(WSGITask):
    def build_response_header(self) -> bytes:
        if self.environ is not None and self.environ.get(_CLOSE):
            self.set_close_on_finish()
        return super().build_response_header()


class _ErrorTask(ErrorTask):
    # A body past DISCARD_BODY_BYTES is refused by waitress itself: the same answer, in JSON.
    def execute(self) -> None:
        if not isinstance(self.request.error, RequestEntityTooLarge):
            super().execute()
            return
        self.status = "413 Request Entity Too Large"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        payload = json.dumps(TOO_LARGE).encode()
        self.content_length = len(payload)
        self.write(payload)


class _Channel(HTTPChannel):
    task_class = _Task
    error_task_class = _ErrorTask
