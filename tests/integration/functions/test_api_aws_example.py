"""The api handler fed events shaped exactly as AWS documents payload format 2.0 (see
fixtures/README.md): only the fields a request changes differ from the published example, so
anything else API Gateway sends (cookies, stage variables, an authorizer, a client certificate,
stray path parameters) must not change what a client sees."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model

from infra.local.events import LambdaContext, load_handler, response_json
from mailproxy.service import files
from tests.support.handlers import ADMIN_TOKEN, ApiClient, account_for, message
from tests.support.smtp_servers import SmtpServer

EXAMPLE = json.loads((Path(__file__).parent / "fixtures" / "apigw_v2_aws_example.json").read_text())


def aws_event(
    method: str,
    path: str,
    *,
    query: dict[str, list[str]] | None = None,
    body: str | None = None,
    base64_body: bool = False,
    route_key: str = "$default",
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The documented example, turned into the request `method path?query` with `body`."""
    event = copy.deepcopy(EXAMPLE)
    event["rawPath"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = route_key
    event["requestContext"]["http"].update(method=method, path=path)
    event["headers"] |= {"x-api-token": ADMIN_TOKEN, "content-type": "application/json"}
    pairs = [(key, value) for key, values in (query or {}).items() for value in values]
    event["rawQueryString"] = "&".join(f"{key}={value}" for key, value in pairs)
    if query:
        # As API Gateway does: a repeated key's values joined by commas.
        event["queryStringParameters"] = {key: ",".join(values) for key, values in query.items()}
    else:
        del event["queryStringParameters"]
    if path_parameters is None:
        event.pop("pathParameters")
    else:
        event["pathParameters"] = path_parameters
    if body is None:
        del event["body"]
    else:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
    event["isBase64Encoded"] = base64_body
    return event


@pytest.fixture
def handler(aws: Any) -> Any:
    return load_handler("api")


@pytest.fixture
def acme(api: ApiClient, smtp_server: SmtpServer) -> None:
    """Tenant acme with its SMTP account "main", so that messages can be queued."""
    assert api.call("POST", "/tenant", {"id": "acme"})[0] == 200
    assert api.call("POST", "/account", account_for(smtp_server))[0] == 200


def send(handler: Any, event: dict[str, Any]) -> tuple[int, Any]:
    response = handler.lambda_handler(event, LambdaContext(function_name="mailproxy-api"))
    return response["statusCode"], response_json(response)


def test_health(handler: Any) -> None:
    # Given the documented event as GET /health / When the handler answers it
    status, body = send(handler, aws_event("GET", "/health"))
    # Then the service is up
    assert status == 200
    assert body == {"status": "ok"}


@pytest.mark.usefixtures("acme")
def test_a_base64_encoded_json_body_is_decoded(handler: Any) -> None:
    # Given tenant acme, and POST /commands/add-messages whose JSON body API Gateway passed
    # in base64
    body = json.dumps({"messages": [message("m1")]})
    event = aws_event("POST", "/commands/add-messages", body=body, base64_body=True)
    # When the handler answers it
    status, answer = send(handler, event)
    # Then the message is taken as if the body had come as text
    assert status == 200, answer
    assert answer["ok"] is True
    assert answer["queued"] == 1


@pytest.mark.usefixtures("acme")
def test_repeated_query_keys_as_api_gateway_joins_them(handler: Any) -> None:
    # Given tenant acme with a stored message, and GET /messages with a flag given twice
    # (API Gateway hands over "true,true" for it)
    body = json.dumps({"messages": [message("m1")]})
    assert send(handler, aws_event("POST", "/commands/add-messages", body=body))[0] == 200
    query = {"tenant_id": ["acme"], "active_only": ["true", "true"]}
    # When the handler answers it
    status, answer = send(handler, aws_event("GET", "/messages", query=query))
    # Then the joined "true,true" is no boolean: a clean 422 naming the field, never a 500
    # (API Gateway has already merged the values; the handler does not guess them apart)
    assert status == 422, answer
    assert ["query", "active_only"] in [item["loc"] for item in answer["detail"]]
    # And the same flag given once is answered with the message
    query = {"tenant_id": ["acme"], "active_only": ["true"]}
    status, answer = send(handler, aws_event("GET", "/messages", query=query))
    assert status == 200, answer
    assert [record["id"] for record in answer["messages"]] == ["m1"]


def test_repeated_tenant_ids_are_a_422_naming_the_field(handler: Any) -> None:
    # Given GET /messages?tenant_id=acme&tenant_id=beta, which API Gateway joins to "acme,beta"
    query = {"tenant_id": ["acme", "beta"]}
    # When the handler answers it
    status, answer = send(handler, aws_event("GET", "/messages", query=query))
    # Then the joined value is no tenant id: a clean 422 naming it
    assert status == 422, answer
    assert ["query", "tenant_id"] in [item["loc"] for item in answer["detail"]]


def test_the_download_route_as_api_gateway_sends_it(handler: Any) -> None:
    # Given GET /files/{token} on the route of its own the stack defines: API Gateway names
    # that route in routeKey and hands the token over in pathParameters; a browser sends
    # cookies and no API token
    token = "x" * 43
    event = aws_event(
        "GET",
        f"/files/{token}",
        route_key="GET /files/{token}",
        path_parameters={"token": token},
    )
    del event["headers"]["x-api-token"]
    # When the handler answers it
    status, answer = send(handler, event)
    # Then the route is found and the unknown link is the service's own 404 (not the
    # resolver's "no such route", not a 401 for the missing token)
    assert status == 404, answer
    assert answer == {"detail": files.LINK_NOT_FOUND}


def test_a_post_without_body_key_is_a_clean_422(handler: Any) -> None:
    # Given POST /commands/add-messages with no `body` key at all, as API Gateway sends an
    # empty request
    event = aws_event("POST", "/commands/add-messages")
    assert "body" not in event
    # When the handler answers it
    status, answer = send(handler, event)
    # Then a 422 naming the missing body, never a 500
    assert status == 422, answer
    assert any(item["loc"][0] == "body" for item in answer["detail"]), answer


@pytest.mark.parametrize(
    "event",
    [
        EXAMPLE,
        aws_event("GET", "/messages", query={"tenant_id": ["acme"], "active_only": ["a", "b"]}),
        aws_event("POST", "/commands/add-messages", body="{}", base64_body=True),
        aws_event("POST", "/commands/add-messages"),
        aws_event(
            "GET", "/files/t", route_key="GET /files/{token}", path_parameters={"token": "t"}
        ),
    ],
    ids=["as-published", "repeated-query-key", "base64-body", "no-body", "path-parameter"],
)
def test_the_events_these_tests_send_are_valid_2_0_events(event: dict[str, Any]) -> None:
    # Given the published example or an event derived from it / When Powertools' own model
    # of a payload 2.0 event reads it / Then it accepts it (the fixture is no hand-made shape)
    APIGatewayProxyEventV2Model.model_validate(event)


def test_the_example_as_published_is_a_clean_404(handler: Any) -> None:
    # Given the documented event untouched (POST /my/path, a text body, no token)
    # When the handler answers it
    status, answer = send(handler, copy.deepcopy(EXAMPLE))
    # Then the unknown route is a JSON 404, not a crash on any of its fields
    assert status == 404, answer
