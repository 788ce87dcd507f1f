"""A record of every AWS call each function makes, for the least-privilege check.

Off by default. With `MAILPROXY_RECORD_AWS_CALLS=<path>`, the handlers loaded by
`infra.local.events.load_handler` (local mode's and the integration tests') run under the name
of their function, and every AWS call made while one runs, by boto3 or pynamodb, appends one
JSON line to <path>: the function, the service, the operation, and the names of what it
touches (table, index, queue, bucket, key, KMS key, secret, and each item of a transaction or a
batch, by table). Never a value: no item, body, plaintext or secret.

The hook is botocore's `before-parameter-build` event, which every API call and every presigned
URL emits once (retries do not), installed among botocore's built-in handlers so every session
made afterwards has it: boto3's and pynamodb's alike.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

RECORD_ENV = "MAILPROXY_RECORD_AWS_CALLS"
EVENT = "before-parameter-build"
# The parameters that name a resource, in any service the proxy calls ("Key": an S3 object's;
# DynamoDB's is an item's key, a value).
NAMING_PARAMETERS = ("TableName", "IndexName", "QueueUrl", "Bucket", "KeyId", "SecretId")

_function: ContextVar[str | None] = ContextVar("mailproxy_function", default=None)
_lock = threading.Lock()
_recorders: list[Recorder] = []


@contextmanager
def running(function: str) -> Iterator[None]:
    """AWS calls made in this context (and in contexts copied from it) are `function`'s."""
    token = _function.set(function)
    try:
        yield
    finally:
        _function.reset(token)


def wrap(function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    def recorded(*args: Any, **kwargs: Any) -> Any:
        with running(function):
            return handler(*args, **kwargs)

    return recorded


def names(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """What a call names, from its API parameters."""
    named: dict[str, Any] = {key: params[key] for key in NAMING_PARAMETERS if key in params}
    if service == "s3" and "Key" in params:
        named["Key"] = params["Key"]
    if "TransactItems" in params:  # [{"Put": {"TableName": ...}}, ...] -> [["Put", table]]
        named["TransactItems"] = [
            [kind, body.get("TableName")]
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if "RequestItems" in params:  # BatchGetItem / BatchWriteItem: the tables
        named["RequestItems"] = sorted(params["RequestItems"])
    if operation == "DeleteObjects":
        named["Keys"] = [entry["Key"] for entry in params.get("Delete", {}).get("Objects", [])]
    return named


class Recorder:
    """The `before-parameter-build` handler: one JSON line per call of a running function."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._write_lock = threading.Lock()

    def __call__(self, params: dict[str, Any], model: Any, context: Any = None, **_: Any) -> None:
        function = _function.get()
        if function is None:  # local mode's own calls (provisioning, TTL), a test's set-up
            return
        service = model.service_model.service_name
        line = {
            "function": function,
            "service": service,
            "operation": model.name,
            "presigned": bool(context and context.get("is_presign_request")),
            "names": names(service, model.name, params),
        }
        with self._write_lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")


def install(path: str) -> Recorder:
    """Record to `path` every call of the botocore sessions made from now on; idempotent."""
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS

    with _lock:
        for recorder in _recorders:
            if recorder.path == path:
                return recorder
        recorder = Recorder(path)
        BUILTIN_HANDLERS.append((EVENT, recorder))
        _recorders.append(recorder)
        # boto3's default session may predate the handler: the next client gets a new one.
        boto3.DEFAULT_SESSION = None
        return recorder


def uninstall_all() -> None:
    """Stop recording (sessions made from now on; tests put botocore back as it was)."""
    from botocore.handlers import BUILTIN_HANDLERS

    with _lock:
        for recorder in _recorders:
            BUILTIN_HANDLERS.remove((EVENT, recorder))
        _recorders.clear()


def path_from_env() -> str | None:
    return os.environ.get(RECORD_ENV) or None
