"""Who may call what, as one matrix: every route of the api against no key, a wrong key, the
tenant's own key and the admin key, over real handler invocations (moto behind).

Each request is valid and names tenant "acme" (which has an account "main"), so the answer is
decided by who calls, not by what is asked. The admin's cell runs last: it may delete what the
others only tried to.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local.events import LambdaContext, http_event
from mailproxy.api import access
from mailproxy.api.access import Scope
from tests.support.handlers import ADMIN_TOKEN, ApiClient, message
from tests.support.tenants import create_tenant

ACCOUNT = {"id": "main", "tenant_id": "acme", "host": "h", "port": 25}
# (method, path, query, body): one valid request per route.
REQUESTS: dict[str, tuple[str, str, str, Any]] = {
    "GET /health": ("GET", "/health", "", None),
    "GET /metrics": ("GET", "/metrics", "", None),
    "GET /openapi.json": ("GET", "/openapi.json", "", None),
    "GET /docs": ("GET", "/docs", "", None),
    "GET /files/{token}": ("GET", "/files/" + "x" * 43, "", None),
    "GET /status": ("GET", "/status", "", None),
    "POST /commands/run-now": ("POST", "/commands/run-now", "", None),
    "POST /commands/suspend": ("POST", "/commands/suspend", "tenant_id=acme", None),
    "POST /commands/activate": ("POST", "/commands/activate", "tenant_id=acme", None),
    "POST /commands/add-messages": (
        "POST",
        "/commands/add-messages",
        "",
        {"messages": [message("m1")]},
    ),
    "POST /commands/delete-messages": (
        "POST",
        "/commands/delete-messages",
        "tenant_id=acme",
        {"ids": ["m1"]},
    ),
    "POST /commands/cleanup-messages": (
        "POST",
        "/commands/cleanup-messages",
        "tenant_id=acme",
        {},
    ),
    "POST /account": ("POST", "/account", "", ACCOUNT),
    "GET /accounts": ("GET", "/accounts", "tenant_id=acme", None),
    "DELETE /account/{account_id}": ("DELETE", "/account/main", "tenant_id=acme", None),
    "GET /messages": ("GET", "/messages", "tenant_id=acme", None),
    "POST /tenant": ("POST", "/tenant", "", {"id": "acme", "name": "Acme"}),
    "GET /tenants": ("GET", "/tenants", "", None),
    "GET /tenants/sync-status": ("GET", "/tenants/sync-status", "", None),
    "GET /instance": ("GET", "/instance", "", None),
    "PUT /instance": ("PUT", "/instance", "", {"name": "prod"}),
    "POST /instance/reload-bounce": ("POST", "/instance/reload-bounce", "", None),
    "GET /command-log": ("GET", "/command-log", "", None),
    "GET /command-log/export": ("GET", "/command-log/export", "", None),
    "GET /tenant/{tenant_id}": ("GET", "/tenant/acme", "", None),
    "PUT /tenant/{tenant_id}": ("PUT", "/tenant/acme", "", {"name": "Acme"}),
    "DELETE /tenant/{tenant_id}": ("DELETE", "/tenant/acme", "", None),
    "POST /tenant/{tenant_id}/api-key": ("POST", "/tenant/acme/api-key", "", None),
    "DELETE /tenant/{tenant_id}/api-key": ("DELETE", "/tenant/acme/api-key", "", None),
    # genro-mail-proxy 0.7's routes
    "GET /instance/status": ("GET", "/instance/status", "", None),
    "POST /instance/run_now": ("POST", "/instance/run_now", "", {}),
    "POST /instance/suspend": ("POST", "/instance/suspend", "", {"tenant_id": "acme"}),
    "POST /instance/activate": ("POST", "/instance/activate", "", {"tenant_id": "acme"}),
    "GET /instance/get_sync_status": ("GET", "/instance/get_sync_status", "", None),
    "GET /instance/get": ("GET", "/instance/get", "", None),
    "POST /instance/update": ("POST", "/instance/update", "", {"name": "prod"}),
    "GET /instance/get_bounce_config": ("GET", "/instance/get_bounce_config", "", None),
    "POST /instance/set_bounce_config": (
        "POST",
        "/instance/set_bounce_config",
        "",
        {"poll_interval": 120},
    ),
    "POST /instance/reload_bounce": ("POST", "/instance/reload_bounce", "", None),
    "POST /tenants/add": ("POST", "/tenants/add", "", {"id": "acme", "name": "Acme"}),
    "GET /tenants/list": ("GET", "/tenants/list", "", None),
    "GET /tenants/get": ("GET", "/tenants/get", "tenant_id=acme", None),
    "GET /tenants/get_suspended_batches": (
        "GET",
        "/tenants/get_suspended_batches",
        "tenant_id=acme",
        None,
    ),
    "POST /tenants/update": ("POST", "/tenants/update", "", {"tenant_id": "acme", "name": "A"}),
    "POST /tenants/delete": ("POST", "/tenants/delete", "", {"tenant_id": "acme"}),
    "POST /tenants/suspend_batch": ("POST", "/tenants/suspend_batch", "", {"tenant_id": "acme"}),
    "POST /tenants/activate_batch": (
        "POST",
        "/tenants/activate_batch",
        "",
        {"tenant_id": "acme"},
    ),
    "POST /tenants/create_api_key": (
        "POST",
        "/tenants/create_api_key",
        "",
        {"tenant_id": "acme"},
    ),
    "POST /tenants/revoke_api_key": (
        "POST",
        "/tenants/revoke_api_key",
        "",
        {"tenant_id": "acme"},
    ),
    "POST /accounts/add": ("POST", "/accounts/add", "", ACCOUNT),
    "GET /accounts/list": ("GET", "/accounts/list", "tenant_id=acme", None),
    "GET /accounts/get": ("GET", "/accounts/get", "tenant_id=acme&account_id=main", None),
    "POST /accounts/delete": (
        "POST",
        "/accounts/delete",
        "",
        {"tenant_id": "acme", "account_id": "main"},
    ),
    "POST /messages/add_batch": ("POST", "/messages/add_batch", "", {"messages": [message("m1")]}),
    "POST /messages/add": ("POST", "/messages/add", "", message("m1")),
    "GET /messages/get": ("GET", "/messages/get", "tenant_id=acme&message_id=m0", None),
    "GET /messages/list": ("GET", "/messages/list", "tenant_id=acme", None),
    "POST /messages/delete_batch": (
        "POST",
        "/messages/delete_batch",
        "",
        {"tenant_id": "acme", "ids": ["m1"]},
    ),
    "POST /messages/delete": ("POST", "/messages/delete", "", {"message_pk": "acme/m1"}),
    "GET /messages/cleanup": ("GET", "/messages/cleanup", "tenant_id=acme", None),
    "GET /command_log/list": ("GET", "/command_log/list", "", None),
    "GET /command_log/get": ("GET", "/command_log/get", "command_id={command_id}", None),
    "GET /command_log/export": ("GET", "/command_log/export", "", None),
}
# What a route's request needs to exist first, made by the admin before the callers call.
SETUP: dict[str, list[tuple[str, str, Any]]] = {
    "GET /messages/get": [
        ("POST", "/account", ACCOUNT),
        ("POST", "/commands/add-messages", {"messages": [message("m0")]}),
    ],
}

CALLERS = ("no key", "wrong key", "tenant key", "admin key")
# The status each caller gets, in the order of CALLERS.
PUBLIC = (200, 200, 200, 200)
TENANT = (401, 401, 200, 200)
ADMIN = (401, 401, 403, 200)
MATRIX: dict[str, tuple[int, int, int, int]] = {
    "GET /health": PUBLIC,
    "GET /metrics": PUBLIC,
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    # The link is the credential: an unknown one is a 404 whoever asks.
    "GET /files/{token}": (404, 404, 404, 404),
    "GET /status": TENANT,
    "POST /commands/run-now": TENANT,
    "POST /commands/suspend": TENANT,
    "POST /commands/activate": TENANT,
    "POST /commands/add-messages": TENANT,
    "POST /commands/delete-messages": TENANT,
    "POST /commands/cleanup-messages": TENANT,
    "POST /account": TENANT,
    "GET /accounts": TENANT,
    "DELETE /account/{account_id}": TENANT,
    "GET /messages": TENANT,
    "POST /tenant": ADMIN,
    "GET /tenants": ADMIN,
    "GET /tenants/sync-status": ADMIN,
    "GET /instance": ADMIN,
    "PUT /instance": ADMIN,
    "POST /instance/reload-bounce": ADMIN,
    "GET /command-log": ADMIN,
    "GET /command-log/export": ADMIN,
    "GET /tenant/{tenant_id}": TENANT,
    "PUT /tenant/{tenant_id}": TENANT,
    "DELETE /tenant/{tenant_id}": ADMIN,
    "POST /tenant/{tenant_id}/api-key": ADMIN,
    "DELETE /tenant/{tenant_id}/api-key": ADMIN,
    # genro-mail-proxy 0.7's routes: each its 0.6 twin's row
    "GET /instance/status": TENANT,
    "POST /instance/run_now": TENANT,
    "POST /instance/suspend": TENANT,
    "POST /instance/activate": TENANT,
    "GET /instance/get_sync_status": ADMIN,
    "GET /instance/get": ADMIN,
    "POST /instance/update": ADMIN,
    "GET /instance/get_bounce_config": ADMIN,
    "POST /instance/set_bounce_config": ADMIN,
    "POST /instance/reload_bounce": ADMIN,
    "POST /tenants/add": ADMIN,
    "GET /tenants/list": ADMIN,
    "GET /tenants/get": TENANT,
    "GET /tenants/get_suspended_batches": TENANT,
    "POST /tenants/update": TENANT,
    "POST /tenants/delete": ADMIN,
    "POST /tenants/suspend_batch": TENANT,
    "POST /tenants/activate_batch": TENANT,
    "POST /tenants/create_api_key": ADMIN,
    "POST /tenants/revoke_api_key": ADMIN,
    "POST /accounts/add": TENANT,
    "GET /accounts/list": TENANT,
    "GET /accounts/get": TENANT,
    "POST /accounts/delete": TENANT,
    "POST /messages/add_batch": TENANT,
    "POST /messages/add": TENANT,
    "GET /messages/get": TENANT,
    "GET /messages/list": TENANT,
    "POST /messages/delete_batch": TENANT,
    "POST /messages/delete": TENANT,
    "GET /messages/cleanup": TENANT,
    "GET /command_log/list": ADMIN,
    "GET /command_log/get": ADMIN,
    "GET /command_log/export": ADMIN,
}


def test_the_matrix_covers_every_route_the_api_serves(api: ApiClient) -> None:
    # Given the routes the handler registers / Then each has its row, here and in the table
    served = {
        f"{route.method} {route.openapi_path}"
        for route in api.handler.app._static_routes + api.handler.app._dynamic_routes
    }
    table = {f"{route.method} {route.path}" for route in access.ROUTES}
    assert served == set(MATRIX) == set(REQUESTS) == table


def test_each_row_is_what_the_route_table_says() -> None:
    # Given the scope of each route in the route table / Then its row is that scope's
    by_scope = {Scope.PUBLIC: PUBLIC, Scope.TENANT: TENANT, Scope.ADMIN: ADMIN}
    for route in access.ROUTES:
        name = f"{route.method} {route.path}"
        if name != "GET /files/{token}":  # public, and its own 404 for an unknown link
            assert MATRIX[name] == by_scope[route.scope], name


@pytest.mark.parametrize("route", list(MATRIX))
def test_who_may_call_each_route(api: ApiClient, route: str) -> None:
    # Given tenant acme with its key and an account "main"
    tenant_key = create_tenant(api, "acme")
    method, path, query, body = REQUESTS[route]
    for setup_method, setup_path, setup_body in SETUP.get(route, []):
        assert api.call(setup_method, setup_path, setup_body)[0] == 200
    if "{command_id}" in query:  # the tenant's creation, as logged
        logged = api.call("GET", "/command_log/list")[1]
        query = query.format(command_id=logged[-1]["id"])
    keys = (None, "wrong-key", tenant_key, ADMIN_TOKEN)
    got = []
    for key in keys:
        # (as it was before: the tenant's own call may have deleted it)
        assert api.call("POST", "/account", ACCOUNT) == (200, {"ok": True})
        # When each caller makes the same valid request (the admin last)
        headers = {"content-type": "application/json"} | ({"X-API-Token": key} if key else {})
        event = http_event(
            method,
            path,
            query=query,
            headers=headers,
            body=json.dumps(body) if body is not None else None,
        )
        got.append(api.handler.lambda_handler(event, LambdaContext())["statusCode"])
    # Then each gets the status of its cell
    assert dict(zip(CALLERS, got, strict=True)) == dict(zip(CALLERS, MATRIX[route], strict=True))


# A request that fails validation is refused before its 422 as a valid one would be, with one
# exception kept as it is: a tenant key on an admin-only route whose path names a malformed
# tenant id gets the 401 of another tenant's id, where a well-formed one gets the 403 SPEC.md
# gives a tenant token on an admin-only endpoint.
MALFORMED: dict[str, tuple[tuple[str, str, str, Any], tuple[int, int, int, int]]] = {
    "POST /tenant, invalid id": (("POST", "/tenant", "", {"id": "bad id"}), (401, 401, 403, 422)),
    "GET /messages, invalid limit": (
        ("GET", "/messages", "tenant_id=acme&limit=0", None),
        (401, 401, 422, 422),
    ),
    "DELETE /tenant/{malformed}": (("DELETE", "/tenant/bad%20id", "", None), (401, 401, 401, 422)),
    "POST /tenant/{malformed}/api-key": (
        ("POST", "/tenant/bad%20id/api-key", "", None),
        (401, 401, 401, 422),
    ),
    "DELETE /tenant/{other}": (("DELETE", "/tenant/beta", "", None), (401, 401, 403, 404)),
    # 0.7's routes name the tenant in a query or a body: refused as their 0.6 twins are
    "POST /tenants/add, invalid id": (
        ("POST", "/tenants/add", "", {"id": "bad id"}),
        (401, 401, 403, 422),
    ),
    "GET /messages/list, no tenant": (("GET", "/messages/list", "", None), (401, 401, 422, 422)),
    "GET /messages/list, other tenant, invalid flag": (
        ("GET", "/messages/list", "tenant_id=beta&active_only=maybe", None),
        (401, 401, 401, 422),
    ),
    "POST /messages/delete_batch, other tenant, no ids": (
        ("POST", "/messages/delete_batch", "", {"tenant_id": "beta"}),
        (401, 401, 401, 422),
    ),
    "POST /tenants/delete {other}": (
        ("POST", "/tenants/delete", "", {"tenant_id": "beta"}),
        (401, 401, 403, 404),
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_who_is_refused_before_validation(api: ApiClient, case: str) -> None:
    # Given tenant acme with its key
    tenant_key = create_tenant(api, "acme")
    (method, path, query, body), expected = MALFORMED[case]
    got = []
    for key in (None, "wrong-key", tenant_key, ADMIN_TOKEN):
        # When each caller makes the same request
        headers = {"content-type": "application/json"} | ({"X-API-Token": key} if key else {})
        event = http_event(
            method,
            path,
            query=query,
            headers=headers,
            body=json.dumps(body) if body is not None else None,
        )
        got.append(api.handler.lambda_handler(event, LambdaContext())["statusCode"])
    # Then each gets the status of its cell
    assert dict(zip(CALLERS, got, strict=True)) == dict(zip(CALLERS, expected, strict=True))
