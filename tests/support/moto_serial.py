"""moto's `mock_aws` answers each request in the thread that makes it, and its in-memory
backends are not made for concurrent writers (a transaction checks, then writes). A sender
sends a wave from several threads; under this, moto answers one request at a time, as local
mode's server answers DynamoDB."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def one_request_at_a_time() -> Iterator[None]:
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    serve = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return serve(self, request)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = serve  # type: ignore[method-assign]
