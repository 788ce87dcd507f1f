"""The events AWS would hand the Lambdas: API Gateway HTTP API (payload 2.0) and SQS batches,
plus a Lambda context. Local mode and the tests build them here, the same way."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from infra.local import aws_calls

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/handler.py under a unique module name, as its Lambda would;
    with MAILPROXY_RECORD_AWS_CALLS set, its AWS calls are recorded (infra/local/aws_calls.py)."""
    path = FUNCTIONS_DIR / function / "handler.py"
    spec = importlib.util.spec_from_file_location(f"mailproxy_function_{function}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    record_to = aws_calls.path_from_env()
    if record_to:  # every AWS call its invocations make is recorded, under its name
        aws_calls.install(record_to)
        module.lambda_handler = aws_calls.wrap(function, module.lambda_handler)  # type: ignore[attr-defined]
    return module


@dataclass
class LambdaContext:
    function_name: str = "mailproxy-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:mailproxy-local"
    log_group_name: str = "/aws/lambda/mailproxy-local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def http_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload format 2.0) event for one request."""
    raw_body = body.encode() if isinstance(body, str) else body
    lowered = {key.lower(): value for key, value in (headers or {}).items()}
    # API Gateway takes the Cookie header out of `headers` and hands it over as `cookies`,
    # one entry per cookie (several Cookie headers arrive joined, by "; " or ", ").
    cookie_header = lowered.pop("cookie", "")
    cookies = [c.strip() for c in re.split(r"[;,]", cookie_header) if c.strip()]
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if raw_body:
        try:
            event["body"] = raw_body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(raw_body).decode()
            event["isBase64Encoded"] = True
    return event


def sqs_record(
    body: str, queue_arn: str, receipt_handle: str, message_id: str, receive_count: int = 1
) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "000000000000",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def response_json(response: dict[str, Any]) -> Any:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body) if body else None
