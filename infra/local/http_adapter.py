"""The API on a local port: each HTTP request becomes the API Gateway event that the real
api handler gets on AWS, and its result becomes the HTTP response."""

from __future__ import annotations

import base64
import json
import logging
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.local.events import LambdaContext, http_event

log = logging.getLogger("mailproxy.local.http")
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit

LocalRoute = Callable[[str], tuple[int, Any] | None]


def make_server(
    port: int,
    api_handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    local_routes: LocalRoute,
) -> ThreadingHTTPServer:
    # One execution environment: Lambda never runs two invocations in one at once.
    invocation_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "mailproxy-local"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._reply(413, {"detail": "Request body too large"})
                return
            body = self.rfile.read(length) if length else None
            if path.startswith("/local/"):
                local = local_routes(f"{self.command} {path}")
                if local is not None:
                    self._reply(*local)
                    return
            event = http_event(
                self.command, path, query=query, headers=dict(self.headers.items()), body=body
            )
            try:
                with invocation_lock:
                    response = api_handler(event, LambdaContext(function_name="mailproxy-api"))
            except Exception:
                log.exception("api handler failed")
                self._reply(500, {"message": "Internal Server Error"})
                return
            raw = response.get("body") or ""
            payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
            self.send_response(int(response.get("statusCode", 200)))
            for key, value in (response.get("headers") or {}).items():
                if key.lower() not in ("content-length", "connection"):
                    self.send_header(key, str(value))
            for key, values in (response.get("multiValueHeaders") or {}).items():
                for value in values:
                    self.send_header(key, str(value))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _reply(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    server = _QuietServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up before reading its answer is not the server's fault.
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)
