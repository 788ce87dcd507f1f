"""/openapi.json documents what each route answers, not only what it takes."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.events import LambdaContext, http_event


@pytest.fixture
def schema(aws: Any) -> dict[str, Any]:
    import json

    from infra.local.events import load_handler

    response = load_handler("api").lambda_handler(
        http_event("GET", "/openapi.json"), LambdaContext()
    )
    assert response["statusCode"] == 200
    return dict(json.loads(response["body"]))


def answer_of(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    content = schema["paths"][path][method]["responses"]["200"]["content"]["application/json"]
    ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
    return dict(schema["components"]["schemas"][ref])


@pytest.mark.parametrize(
    ("method", "path", "fields"),
    [
        ("get", "/tenants", {"ok", "tenants"}),
        ("get", "/tenant/{tenant_id}", {"id", "client_auth", "suspended_batches"}),
        ("get", "/messages", {"ok", "messages"}),
        ("get", "/accounts", {"ok", "accounts"}),
        ("post", "/commands/add-messages", {"ok", "queued", "rejected"}),
        ("post", "/commands/suspend", {"ok", "tenant_id", "pending_messages"}),
        ("get", "/tenants/sync-status", {"ok", "sync_interval_seconds", "tenants"}),
    ],
)
def test_each_route_documents_its_answer(
    schema: dict[str, Any], method: str, path: str, fields: set[str]
) -> None:
    # When the document is read / Then the route's 200 answer names its fields
    assert fields <= set(answer_of(schema, method, path)["properties"])


def test_a_listed_account_is_documented_without_its_password(schema: dict[str, Any]) -> None:
    account = schema["components"]["schemas"]["AccountView"]["properties"]
    assert {"id", "host", "port", "limit_per_minute", "created_at"} <= set(account)
    assert "password" not in account
