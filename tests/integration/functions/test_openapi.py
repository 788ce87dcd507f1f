"""The API documents itself: GET /openapi.json and Swagger UI at /docs, matching its routes."""

from __future__ import annotations

import json

from infra.local.events import LambdaContext, http_event
from tests.support.handlers import ApiClient

# SPEC.md's endpoint table: what a client written for genro-mail-proxy 0.6 may call.
CONTRACT = {
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/status"),
    ("post", "/commands/run-now"),
    ("post", "/commands/suspend"),
    ("post", "/commands/activate"),
    ("post", "/commands/add-messages"),
    ("post", "/commands/delete-messages"),
    ("post", "/commands/cleanup-messages"),
    ("post", "/account"),
    ("get", "/accounts"),
    ("delete", "/account/{account_id}"),
    ("get", "/messages"),
    ("post", "/tenant"),
    ("get", "/tenants"),
    ("get", "/tenants/sync-status"),
    ("get", "/tenant/{tenant_id}"),
    ("put", "/tenant/{tenant_id}"),
    ("delete", "/tenant/{tenant_id}"),
    ("post", "/tenant/{tenant_id}/api-key"),
    ("delete", "/tenant/{tenant_id}/api-key"),
}


def documented(api: ApiClient) -> set[tuple[str, str]]:
    status, schema = api.call("GET", "/openapi.json", token=None)
    assert status == 200
    assert schema["openapi"].startswith("3.")
    return {(method, path) for path, item in schema["paths"].items() for method in item}


def test_every_route_the_api_serves_is_documented(api: ApiClient) -> None:
    # Given the routes the api handler really serves (less the documentation's own)
    served = {
        (route.method.lower(), route.openapi_path)
        for route in api.handler.app._static_routes + api.handler.app._dynamic_routes
        if route.include_in_schema
    }
    # When the OpenAPI document is fetched, without a token
    paths = documented(api)
    # Then it documents exactly those, and every endpoint of the contract is among them
    assert paths == served
    assert paths >= CONTRACT


def test_request_bodies_are_described_with_their_fields(api: ApiClient) -> None:
    _, schema = api.call("GET", "/openapi.json", token=None)
    components = schema["components"]["schemas"]
    message = components["Message"]["properties"]
    assert {"id", "to", "subject", "priority", "attachments", "deferred_ts"} <= set(message)
    # POST /account changes the fields given: only the id is required by the schema
    account = components["AccountChange"]
    assert {"id", "host", "port", "use_tls", "limit_behavior", "max_connections"} <= set(
        account["properties"]
    )
    assert account["required"] == ["id"]


def test_swagger_ui_is_served_at_docs(api: ApiClient) -> None:
    # When /docs is opened in a browser / Then the Swagger UI page with the document in it
    response = api.handler.lambda_handler(http_event("GET", "/docs"), LambdaContext())
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/html")
    page = response["body"]
    assert "SwaggerUIBundle" in page
    assert json.dumps("/commands/add-messages") in page
