"""The handlers reach the embedded emulation by a function call, not by loopback HTTP.

Local mode's handlers run in the same process as the moto server. Their boto3 and pynamodb
clients still build, sign and parse every request as on AWS; only the hop in between is
skipped: a signed request addressed to the local endpoint is handed to the same moto backends
the server serves, the way moto's own `mock_aws` does it. Under load that hop (urllib3 on
one side, werkzeug's HTTP server on the other) was about a third of local mode's CPU.

The server stays up for everything else: the user's aws CLI and scripts, and services whose
addressing is not one host per service (S3), which keep going over HTTP.
"""

from __future__ import annotations

import re
import threading
from contextlib import nullcontext
from typing import Any

# Services whose moto URL is https://{signing name}.{region}.amazonaws.com/; the rest go by HTTP.
IN_PROCESS_SERVICES = frozenset(
    {"dynamodb", "sqs", "events", "scheduler", "monitoring", "logs", "kms", "secretsmanager"}
)
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")

_installed: list[InProcessRoute] = []
_install_lock = threading.Lock()


class InProcessRoute:
    """A botocore `before-send` handler: answers requests for `endpoint` from moto directly."""

    def __init__(self, endpoint: str, dynamodb_lock: threading.Lock) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        self.endpoint = endpoint.rstrip("/")
        self.enabled = True
        self._dynamodb_lock = dynamodb_lock
        self._stubber = BotocoreStubber()  # its dispatch, not the global (disabled) instance

    def __call__(self, request: Any, **_: Any) -> Any:
        if not self.enabled or not request.url.startswith(self.endpoint + "/"):
            return None
        scope = _SCOPE.search(_header(request, "Authorization"))
        if scope is None or scope["service"] not in IN_PROCESS_SERVICES:
            return None
        service, region = scope["service"], scope["region"]
        local_url = request.url
        request.url = f"https://{service}.{region}.amazonaws.com{local_url[len(self.endpoint) :]}"
        try:
            # DynamoDB requests are served one at a time, as the server serves them.
            with self._dynamodb_lock if service == "dynamodb" else nullcontext():
                answer = self._stubber.process_request(request)
        finally:
            request.url = local_url
        if answer is None:
            return None
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        status, headers, body = answer
        return AWSResponse(local_url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name) or ""
    return value.decode() if isinstance(value, bytes) else str(value)


def install(endpoint: str, dynamodb_lock: threading.Lock) -> InProcessRoute:
    """Route this process's botocore sessions made from now on; idempotent per endpoint."""
    from botocore.handlers import BUILTIN_HANDLERS

    with _install_lock:
        for route in _installed:
            if route.endpoint == endpoint.rstrip("/"):
                route.enabled = True
                return route
        route = InProcessRoute(endpoint, dynamodb_lock)
        # First among the before-send handlers, so moto's own (disabled) stubber never runs.
        BUILTIN_HANDLERS.insert(0, ("before-send", route))
        _installed.append(route)
        return route


def uninstall() -> None:
    with _install_lock:
        for route in _installed:
            route.enabled = False
