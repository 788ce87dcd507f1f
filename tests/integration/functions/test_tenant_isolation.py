"""One tenant's key against another tenant's data, on every endpoint of SPEC.md's table.

Tenants "alpha" (A) and "beta" (B) are created through POST /tenant; each has an account
"main" on the test SMTP server, a sent message (with its event) and a scheduled one. A's key
is then used against B in every way a request can name a tenant (query, body, path); the
answer must be a 401 (tenant scope) or a 403 (admin only), and B must be exactly as before.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest

from infra.local.events import LambdaContext, http_event
from tests.support.handlers import ADMIN_TOKEN, ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.tenants import (
    ADMIN_ONLY,
    WRONG_TENANT,
    create_tenant,
    mark_events_reported,
    message_ids,
    ok_json,
    snapshot,
)

A = "alpha"
B = "beta"
LATER = int(time.time()) + 86_400


@dataclass
class World:
    api: ApiClient
    sender: SenderDriver
    server: SmtpServer
    key_a: str
    key_b: str

    def as_a(self, method: str, path: str, body: Any = None, query: str = "") -> tuple[int, Any]:
        return self.api.call(method, path, body, query=query, token=self.key_a)


def messages_of(tenant_id: str) -> list[dict[str, Any]]:
    return [
        message(f"{tenant_id}-sent", tenant_id=tenant_id, **{"from": f"app@{tenant_id}.test"}),
        message(f"{tenant_id}-later", tenant_id=tenant_id, deferred_ts=LATER, batch_code="nl"),
        message("shared-id", tenant_id=tenant_id, deferred_ts=LATER),
    ]


@pytest.fixture
def world(api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer) -> World:
    """Given tenants alpha and beta, each with an account, a sent message whose event was
    reported (so cleanup-messages would remove it) and two scheduled messages."""
    keys = {}
    for tenant_id in (A, B):
        keys[tenant_id] = create_tenant(
            api,
            tenant_id,
            name=tenant_id.title(),
            client_base_url=f"https://{tenant_id}.example",
            client_auth={"method": "bearer", "token": f"{tenant_id}-sync-token"},
        )
        account = account_for(smtp_server, tenant_id=tenant_id)
        assert api.call("POST", "/account", account, token=keys[tenant_id]) == (200, {"ok": True})
        status, body = api.call(
            "POST",
            "/commands/add-messages",
            {"messages": messages_of(tenant_id)},
            token=keys[tenant_id],
        )
        assert (status, body) == (200, {"ok": True, "queued": 3, "rejected": []})
    sender.drain()
    smtp_server.handler.wait_for(2)
    assert len(smtp_server.received) == 2
    for tenant_id in (A, B):
        assert mark_events_reported(tenant_id, f"{tenant_id}-sent") == 1
    return World(api, sender, smtp_server, keys[A], keys[B])


def b_state(world: World) -> dict[str, Any]:
    """B as the admin sees it, and what its SMTP server has received."""
    return snapshot(world.api, B) | {"received": len(world.server.received)}


def assert_b_unchanged(world: World, before: dict[str, Any]) -> None:
    world.sender.drain()
    assert b_state(world) == before
    # and B's own key still works on B
    assert ok_json(world.api, "GET", f"/tenant/{B}", token=world.key_b)["id"] == B
    assert sorted(message_ids(world.api, B, token=world.key_b)) == [
        "beta-later",
        "beta-sent",
        "shared-id",
    ]


# Every endpoint of SPEC.md's table that names a tenant, with A's key aimed at B.
TENANT_SCOPE = [
    ("POST", "/commands/suspend", f"tenant_id={B}", None),
    ("POST", "/commands/suspend", f"tenant_id={B}&batch_code=nl", None),
    ("POST", "/commands/activate", f"tenant_id={B}", None),
    ("POST", "/commands/activate", f"tenant_id={B}&batch_code=nl", None),
    (
        "POST",
        "/commands/add-messages",
        "",
        {"messages": [message("intruder", tenant_id=B)]},
    ),
    (  # replacing one of B's waiting messages
        "POST",
        "/commands/add-messages",
        "",
        {"messages": [message("beta-later", tenant_id=B, subject="Replaced")]},
    ),
    (  # B's message hidden among A's own
        "POST",
        "/commands/add-messages",
        "",
        {"messages": [message("alpha-new", tenant_id=A), message("intruder", tenant_id=B)]},
    ),
    ("POST", "/commands/delete-messages", f"tenant_id={B}", {"ids": ["beta-later", "shared-id"]}),
    ("POST", "/commands/delete-messages", f"tenant_id={B}", {"ids": ["beta-sent"]}),
    ("POST", "/commands/cleanup-messages", f"tenant_id={B}", {"older_than_seconds": 0}),
    ("POST", "/commands/cleanup-messages", f"tenant_id={B}", None),
    ("POST", "/account", "", {"id": "main", "tenant_id": B, "host": "evil.test", "port": 25}),
    ("POST", "/account", "", {"id": "extra", "tenant_id": B, "host": "evil.test", "port": 25}),
    ("GET", "/accounts", f"tenant_id={B}", None),
    ("DELETE", "/account/main", f"tenant_id={B}", None),
    ("GET", "/messages", f"tenant_id={B}", None),
    ("GET", "/messages", f"tenant_id={B}&include_history=true&active_only=true&limit=1", None),
    ("GET", f"/tenant/{B}", "", None),
    ("PUT", f"/tenant/{B}", "", {"name": "Pwned", "client_base_url": "https://evil.example"}),
    ("PUT", f"/tenant/{B}", "", {"active": False}),
    ("GET", "/tenant/ghost", "", None),  # a tenant that does not exist: no existence leak
]

ADMIN_ONLY_CALLS = [
    ("POST", "/tenant", "", {"id": B, "name": "Pwned"}),
    ("POST", "/tenant", "", {"id": "newco"}),
    ("GET", "/tenants", "", None),
    ("GET", "/tenants", "active_only=true", None),
    ("GET", "/tenants/sync-status", "", None),
    ("DELETE", f"/tenant/{B}", "", None),
    ("POST", f"/tenant/{B}/api-key", "", None),
    ("DELETE", f"/tenant/{B}/api-key", "", None),
]


def _cases(calls: list[tuple[str, str, str, Any]]) -> list[Any]:
    params = []
    for method, path, query, body in calls:
        text = f"{method} {path}" + (f"?{query}" if query else "")
        if body:
            text += " " + json.dumps(body, sort_keys=True)[:60]
        params.append(pytest.param(method, path, query, body, id=text))
    return params


@pytest.mark.parametrize(("method", "path", "query", "body"), _cases(TENANT_SCOPE))
def test_a_tenant_key_cannot_reach_another_tenant(
    world: World, method: str, path: str, query: str, body: Any
) -> None:
    # Given B as it is
    before = b_state(world)
    a_before = snapshot(world.api, A)
    # When A's key is used on B
    answer = world.as_a(method, path, body, query)
    # Then 401 "not authorized for this tenant"
    assert answer == (401, WRONG_TENANT)
    # and B is exactly as before, nothing read, nothing changed, nothing sent
    assert_b_unchanged(world, before)
    # and A is unchanged too: a request refused as a whole stores nothing
    assert snapshot(world.api, A) == a_before


@pytest.mark.parametrize(("method", "path", "query", "body"), _cases(ADMIN_ONLY_CALLS))
def test_admin_only_endpoints_refuse_a_tenant_key(
    world: World, method: str, path: str, query: str, body: Any
) -> None:
    # Given B as it is, and the tenants there are
    before = b_state(world)
    tenants = ok_json(world.api, "GET", "/tenants")
    # When A's key calls an endpoint only the admin may call
    answer = world.as_a(method, path, body, query)
    # Then 403, B unchanged, no tenant created or changed
    assert answer == (403, ADMIN_ONLY)
    assert_b_unchanged(world, before)
    assert ok_json(world.api, "GET", "/tenants") == tenants


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/health", (200, {"status": "ok"})),
        ("GET", "/status", (200, {"ok": True, "active": True})),
        ("POST", "/commands/run-now", (200, {"ok": True})),
    ],
)
def test_endpoints_that_name_no_tenant_change_nothing_of_another(
    world: World, method: str, path: str, expected: tuple[int, Any]
) -> None:
    # Given B as it is / When A calls an endpoint that names no tenant
    before = b_state(world)
    assert world.as_a(method, path) == expected
    # Then B is as before
    assert_b_unchanged(world, before)


def test_metrics_are_served_to_anyone_and_change_nothing(world: World) -> None:
    before = b_state(world)
    response = world.api.handler.lambda_handler(
        http_event("GET", "/metrics", headers={"x-api-token": world.key_a}), LambdaContext()
    )
    assert response["statusCode"] == 200
    content_type = {k.lower(): v for k, v in (response.get("headers") or {}).items()}.get(
        "content-type", ""
    )
    assert content_type.startswith("text/plain")
    assert "gmp_sent_total" in response["body"]
    assert "beta-sync-token" not in response["body"]
    assert_b_unchanged(world, before)


# -- what a tenant key sees without naming a tenant ---------------------------------------------


def test_listing_without_tenant_id_shows_only_the_own_tenant(world: World) -> None:
    # When A lists accounts and messages without tenant_id
    accounts = ok_json(world.api, "GET", "/accounts", token=world.key_a)["accounts"]
    messages = ok_json(
        world.api, "GET", "/messages", query="include_history=true", token=world.key_a
    )["messages"]
    # Then only A's
    assert [(a["tenant_id"], a["id"]) for a in accounts] == [(A, "main")]
    assert sorted((m["tenant_id"], m["id"]) for m in messages) == [
        (A, "alpha-later"),
        (A, "alpha-sent"),
        (A, "shared-id"),
    ]
    assert "beta" not in json.dumps([accounts, messages])
    # and naming its own tenant gives the same
    assert (
        ok_json(world.api, "GET", "/accounts", query=f"tenant_id={A}", token=world.key_a)[
            "accounts"
        ]
        == accounts
    )
    # while the admin without tenant_id sees both tenants
    every = ok_json(world.api, "GET", "/messages", token=ADMIN_TOKEN)["messages"]
    assert {m["tenant_id"] for m in every} == {A, B}


def test_a_tenant_key_deleting_ids_of_another_tenant_finds_nothing(world: World) -> None:
    # Given B as it is
    before = b_state(world)
    # When A deletes B's message ids (and one id both have), naming no tenant
    status, body = world.as_a(
        "POST", "/commands/delete-messages", {"ids": ["beta-later", "beta-sent", "shared-id"]}
    )
    # Then B's ids are simply not found (no existence leak), A's own "shared-id" is removed
    assert (status, body) == (
        200,
        {"ok": True, "removed": 1, "not_found": ["beta-later", "beta-sent"], "unauthorized": []},
    )
    assert sorted(message_ids(world.api, A)) == ["alpha-later", "alpha-sent"]
    # and B's messages are all still there, unchanged
    assert_b_unchanged(world, before)


def test_a_tenant_key_naming_its_own_tenant_deletes_only_its_own(world: World) -> None:
    before = b_state(world)
    status, body = world.as_a(
        "POST", "/commands/delete-messages", {"ids": ["shared-id"]}, query=f"tenant_id={A}"
    )
    assert (status, body) == (
        200,
        {"ok": True, "removed": 1, "not_found": [], "unauthorized": []},
    )
    assert_b_unchanged(world, before)


def test_a_message_for_an_account_only_another_tenant_has_stays_with_the_caller(
    world: World, api: ApiClient, smtp_server: SmtpServer
) -> None:
    # Given an account only B has
    api.call("POST", "/account", account_for(smtp_server, tenant_id=B, id="beta-only"))
    before = b_state(world)
    # When A submits a message on it without tenant_id
    payload = message("probe", account_id="beta-only")
    del payload["tenant_id"]
    status, body = world.as_a("POST", "/commands/add-messages", {"messages": [payload]})
    # Then it is A's message, refused for the unknown account; B's account was not used
    assert status == 400
    assert body["detail"]["rejected"] == [
        {"id": "probe", "reason": f"Account 'beta-only' not found for tenant '{A}'"}
    ]
    assert "probe" in message_ids(api, A)
    assert_b_unchanged(world, before)


def test_suspending_the_own_tenant_leaves_the_other_alone(world: World) -> None:
    before = b_state(world)
    status, body = world.as_a("POST", "/commands/suspend")
    assert status == 200
    assert body["tenant_id"] == A
    assert body["suspended_batches"] == ["*"]
    assert_b_unchanged(world, before)
    assert ok_json(world.api, "GET", f"/tenant/{B}")["suspended_batches"] == []


def test_cleanup_of_the_own_tenant_leaves_the_other_alone(world: World) -> None:
    # Given both tenants with a sent, fully reported message
    before = b_state(world)
    # When A cleans up, naming no tenant
    assert world.as_a("POST", "/commands/cleanup-messages", {"older_than_seconds": 0}) == (
        200,
        {"ok": True, "removed": 1},
    )
    # Then A's finished message is gone, B's is still there
    assert sorted(message_ids(world.api, A)) == ["alpha-later", "shared-id"]
    assert_b_unchanged(world, before)


# -- refusals before validation, and pooled sessions -------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "expected"),
    [
        pytest.param(
            "PUT",
            f"/tenant/{B}",
            "",
            {"client_sync_path": "no-slash"},
            (401, WRONG_TENANT),
            id="PUT /tenant/B invalid body",
        ),
        pytest.param(
            "POST",
            "/account",
            "",
            {"id": "main", "tenant_id": B, "host": "h", "port": "x"},
            (401, WRONG_TENANT),
            id="POST /account for B invalid body",
        ),
        pytest.param(
            "POST",
            "/commands/suspend",
            f"tenant_id={B}&batch_code={'x' * 65}",
            None,
            (401, WRONG_TENANT),
            id="suspend B invalid batch_code",
        ),
        pytest.param(
            "POST",
            "/commands/delete-messages",
            f"tenant_id={B}",
            {"ids": "beta-later"},
            (401, WRONG_TENANT),
            id="delete-messages B invalid body",
        ),
        pytest.param(
            "GET",
            "/messages",
            f"tenant_id={B}&limit=0",
            None,
            (401, WRONG_TENANT),
            id="GET /messages B invalid limit",
        ),
        pytest.param(
            "POST", "/tenant", "", {"id": "bad id"}, (403, ADMIN_ONLY), id="POST /tenant invalid"
        ),
    ],
)
def test_a_malformed_request_about_another_tenant_is_still_refused_as_such(
    world: World, method: str, path: str, query: str, body: Any, expected: tuple[int, Any]
) -> None:
    # Given a malformed request about B or to an admin-only endpoint / When A sends it
    # Then the refusal is the one a valid request would get: no validation detail leaks
    before = b_state(world)
    assert world.as_a(method, path, body, query) == expected
    assert_b_unchanged(world, before)


def test_a_pooled_smtp_session_is_never_lent_to_another_tenant(
    api: ApiClient, sender: SenderDriver
) -> None:
    with SmtpServer(credentials=("shared-login", "alpha-secret")) as server:
        # Given alpha's account with the right credentials, which has just delivered a
        # message (its authenticated connection now idle in the sender's pool)
        for tenant_id in (A, B):
            create_tenant(api, tenant_id)
        alpha = account_for(server, tenant_id=A, user="shared-login", password="alpha-secret")
        assert api.call("POST", "/account", alpha) == (200, {"ok": True})
        api.call("POST", "/commands/add-messages", {"messages": [message("a1", tenant_id=A)]})
        sender.drain()
        server.handler.wait_for(1)
        # and beta's account on the same server and login, with a wrong password
        beta = account_for(server, tenant_id=B, user="shared-login", password="a-guess")
        assert api.call("POST", "/account", beta) == (200, {"ok": True})
        # When beta sends a message
        api.call("POST", "/commands/add-messages", {"messages": [message("b1", tenant_id=B)]})
        sender.drain()
        # Then it is refused by the server's AUTH, not carried on alpha's session
        [record] = ok_json(api, "GET", "/messages", query=f"tenant_id={B}")["messages"]
        assert record["status"] == "error"
        assert [r.message["X-Genro-Mail-ID"] for r in server.received] == ["a1"]
