"""The events local mode builds are ones API Gateway could have sent: real HTTP requests go
through the local adapter, and each event it hands the api handler must satisfy Powertools'
own model of an HTTP API payload 2.0 event (the model the resolver is written against)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model

from infra.local.events import http_event
from infra.local.http_adapter import make_server


class Recorder:
    """An api handler that keeps each event it is given and answers 200."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


@pytest.fixture
def front() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    server = make_server(0, recorder, lambda route: None)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", recorder
    finally:
        server.stop()


def only_event(recorder: Recorder) -> APIGatewayProxyEventV2Model:
    assert len(recorder.events) == 1
    return APIGatewayProxyEventV2Model.model_validate(recorder.events[0])


def test_repeated_query_keys_are_joined_by_commas(front: tuple[str, Recorder]) -> None:
    base, recorder = front
    # Given a GET with a key repeated in its query / When it goes through the adapter
    requests.get(f"{base}/messages?tenant_id=acme&status=a&status=b", timeout=10)
    # Then the event is a valid 2.0 event, the raw query kept and the values comma-joined
    event = only_event(recorder)
    assert event.requestContext.http.method == "GET"
    assert event.rawPath == "/messages"
    assert event.rawQueryString == "tenant_id=acme&status=a&status=b"
    assert event.queryStringParameters == {"tenant_id": "acme", "status": "a,b"}
    assert event.body is None


def test_the_path_arrives_percent_decoded_and_the_query_as_sent(
    front: tuple[str, Recorder],
) -> None:
    base, recorder = front
    # Given a request whose path and query are percent-encoded / When it goes through the
    # adapter
    requests.get(f"{base}/tenant/ac%6De/caf%C3%A9?q=a%20b%26c", timeout=10)
    # Then, as an HTTP API does, the path is decoded (rawPath and http.path) while the raw
    # query stays encoded and its parameters are decoded
    event = only_event(recorder)
    assert event.rawPath == "/tenant/acme/caf\u00e9"
    assert event.requestContext.http.path == "/tenant/acme/caf\u00e9"
    assert event.rawQueryString == "q=a%20b%26c"
    assert event.queryStringParameters == {"q": "a b&c"}


def test_a_json_post_arrives_as_text(front: tuple[str, Recorder]) -> None:
    base, recorder = front
    # Given a POST with a JSON body / When it goes through the adapter
    requests.post(f"{base}/commands/add-messages", json={"messages": []}, timeout=10)
    # Then the body is the JSON text, not base64, with lower-case header names
    event = only_event(recorder)
    assert event.requestContext.http.method == "POST"
    assert event.isBase64Encoded is False
    assert json.loads(str(event.body)) == {"messages": []}
    assert event.headers["content-type"] == "application/json"


def test_a_binary_body_arrives_base64_encoded(front: tuple[str, Recorder]) -> None:
    base, recorder = front
    payload = bytes(range(256))
    # Given a body that is not UTF-8 / When it goes through the adapter
    requests.put(
        f"{base}/upload",
        data=payload,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    # Then the event says so and carries the exact bytes in base64
    event = only_event(recorder)
    assert event.isBase64Encoded is True
    assert base64.b64decode(str(event.body)) == payload


def test_cookies_move_out_of_the_headers(front: tuple[str, Recorder]) -> None:
    base, recorder = front
    # Given a request with two cookies / When it goes through the adapter
    requests.get(f"{base}/status", headers={"Cookie": "session=abc; theme=dark"}, timeout=10)
    # Then, as on API Gateway, they are the event's `cookies` and no longer a header
    event = only_event(recorder)
    assert event.cookies == ["session=abc", "theme=dark"]
    assert "cookie" not in event.headers


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD", "OPTIONS", "POST", "PATCH"])
def test_a_request_without_body_has_no_body_key(front: tuple[str, Recorder], method: str) -> None:
    base, recorder = front
    # Given a request with no body / When it goes through the adapter
    requests.request(method, f"{base}/tenant/acme", timeout=10)
    # Then the event is valid and, as on API Gateway, has neither body nor query parameters
    event = only_event(recorder)
    assert event.requestContext.http.method == method
    assert "body" not in recorder.events[0]
    assert "queryStringParameters" not in recorder.events[0]
    assert event.rawQueryString == ""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "GET", "path": "/health"},
        {"method": "get", "path": "/messages", "query": "a=1&a=2&b="},
        {"method": "POST", "path": "/tenant", "body": '{"id": "acme"}'},
        {"method": "POST", "path": "/x", "body": b"\xff\xfe\x00"},
        {"method": "GET", "path": "/x", "headers": {"Cookie": "a=1", "X-API-Token": "t"}},
    ],
)
def test_http_event_builds_valid_events(kwargs: dict[str, Any]) -> None:
    # Given the builder the tests and local mode share / When it builds an event
    event = http_event(**kwargs)
    # Then Powertools' model of a 2.0 event accepts it
    APIGatewayProxyEventV2Model.model_validate(event)
