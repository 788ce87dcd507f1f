"""The embedded AWS emulation: a moto server on loopback, with DynamoDB requests made atomic.

Real DynamoDB applies each request atomically. moto's transactions snapshot whole tables and,
when one is cancelled, restore the snapshot, discarding any write another thread made in
between; local mode and the race tests run many senders at once, so every DynamoDB request
is served one at a time here. Conditional writes then decide races exactly as on AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer

_DYNAMODB_TARGET = "DynamoDB_"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# Held by every DynamoDB request, and by anything else that reads or changes the tables whole.
DYNAMODB_LOCK = threading.Lock()


def serialize_dynamodb(app: WsgiApp, lock: threading.Lock = DYNAMODB_LOCK) -> WsgiApp:
    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(_DYNAMODB_TARGET):
            return app(environ, start_response)
        with lock:
            # Materialize the body under the lock: the request is done when it is sent.
            return list(app(environ, start_response))

    return serialized


class LocalAwsServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        from moto.moto_server.threaded_moto_server import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
            make_server,
        )

        from infra.local import moto_patches

        moto_patches.install()
        app = serialize_dynamodb(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
