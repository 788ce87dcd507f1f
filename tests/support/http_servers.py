"""Real HTTP servers on 127.0.0.1, each in a thread, answering from a route table and recording
what they receive; and listening sockets that never answer, for timeouts. Loopback only."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", {"Location": location})


Route = Reply | Callable[[Recorded], Reply]


class HttpServer:
    """A ThreadingHTTPServer on 127.0.0.1 (an ephemeral port) for the duration of a `with`.

    `routes` maps a path (without its query) to a Reply, or to a function of the request; a
    path not in it gets `fallback` (a function of the request) or a 404. With `tls`, the
    listening socket is wrapped in that server-side context."""

    def __init__(
        self,
        routes: Mapping[str, Route] | None = None,
        *,
        fallback: Callable[[Recorded], Reply] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.fallback = fallback
        self.received: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        with self._lock:
            return [request.path for request in self.received]

    def __enter__(self) -> HttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _answer(self, request: Recorded) -> Reply:
        with self._lock:
            self.received.append(request)
        route = self.routes.get(request.path.split("?", 1)[0])
        if route is None:
            return self.fallback(request) if self.fallback else Reply(404, b"not found")
        return route(request) if callable(route) else route

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = server._answer(
                    Recorded(self.command, self.path, dict(self.headers.items()), body)
                )
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port on 127.0.0.1 where connections are accepted by the kernel and never answered: a
    request to it ends in a read timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@contextmanager
def full_backlog_listener() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full (backlog 0, one connection waiting, never
    accepted): the kernel drops further SYNs, so a new connection ends in a connect timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            yield port
