"""Tenants and their keys, and accounts, through the api Lambda (moto behind): SPEC.md's
POST /tenant, GET /tenants, GET /tenants/sync-status, GET/PUT/DELETE /tenant/{id},
POST/DELETE /tenant/{id}/api-key, POST /account, GET /accounts, DELETE /account/{id}."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from mailproxy import runtime
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.tenants import (
    ADMIN_ONLY,
    INVALID_TOKEN,
    create_tenant,
    ok_json,
    raw_item,
    raw_items,
    records_by_id,
    stored_events,
    tenant_not_found,
)

ACME = {
    "name": "Acme",
    "client_base_url": "https://acme.example",
    "client_sync_path": "/hooks/sync",
    "client_attachment_path": "/hooks/files",
    "client_auth": {"method": "bearer", "token": "acme-bearer-secret"},
}


def tenant_view(api: ApiClient, tenant_id: str, token: Any = ...) -> dict[str, Any]:
    body = ok_json(api, "GET", f"/tenant/{tenant_id}", token=token)
    assert isinstance(body, dict)
    return body


def without_timestamps(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in ("created_at", "updated_at")}


def add(api: ApiClient, *messages: dict[str, Any], token: Any = ...) -> tuple[int, Any]:
    return api.call("POST", "/commands/add-messages", {"messages": list(messages)}, token=token)


# -- create, read, replace --------------------------------------------------------------------


def test_a_new_tenant_gets_an_api_key_once(api: ApiClient) -> None:
    # Given no tenant / When the admin posts one
    status, body = api.call("POST", "/tenant", {"id": "acme"} | ACME)
    # Then the answer carries its key, and the key works
    assert status == 200
    assert set(body) == {"ok", "api_key"}
    assert body["ok"] is True
    key = body["api_key"]
    assert isinstance(key, str)
    assert len(key) >= 40  # secrets.token_urlsafe(32)
    assert api.call("GET", "/status", token=key) == (200, {"ok": True, "active": True})
    # and the tenant reads back as posted, defaults filled in, no secret shown
    view = tenant_view(api, "acme")
    assert without_timestamps(view) == {
        "id": "acme",
        "name": "Acme",
        "client_base_url": "https://acme.example",
        "client_sync_path": "/hooks/sync",
        "client_attachment_path": "/hooks/files",
        "client_auth": {"method": "bearer"},
        "active": True,
        "suspended_batches": [],
    }
    assert view["created_at"]
    assert view["updated_at"]


def test_defaults_of_a_minimal_tenant(api: ApiClient) -> None:
    # Given a tenant posted with its id only / When read / Then SPEC.md's defaults
    create_tenant(api, "bare")
    view = without_timestamps(tenant_view(api, "bare"))
    assert view == {
        "id": "bare",
        "client_sync_path": "/mail-proxy/sync",
        "client_attachment_path": "/mail-proxy/attachments",
        "client_auth": {"method": "none"},
        "active": True,
        "suspended_batches": [],
    }


def test_posting_an_existing_tenant_replaces_it_and_keeps_its_key(api: ApiClient) -> None:
    # Given a tenant with its key, and a suspended batch
    key = create_tenant(api, "acme", **ACME)
    created = tenant_view(api, "acme")
    ok_json(api, "POST", "/commands/suspend", query="tenant_id=acme&batch_code=b1")
    # When the admin posts the same id again with other fields
    status, body = api.call("POST", "/tenant", {"id": "acme", "name": "Acme 2", "active": False})
    # Then the answer has no key
    assert (status, body) == (200, {"ok": True})
    # and the fields are replaced as a whole (those left out are back to their defaults)
    view = tenant_view(api, "acme")
    assert without_timestamps(view) == {
        "id": "acme",
        "name": "Acme 2",
        "client_sync_path": "/mail-proxy/sync",
        "client_attachment_path": "/mail-proxy/attachments",
        "client_auth": {"method": "none"},
        "active": False,
        "suspended_batches": ["b1"],
    }
    assert view["created_at"] == created["created_at"]
    # and the key given at creation still works
    assert tenant_view(api, "acme", token=key)["name"] == "Acme 2"


def test_an_invalid_tenant_is_refused_and_nothing_stored(api: ApiClient) -> None:
    # Given bodies that break the Tenant model
    for body in (
        {"name": "no id"},
        {"id": "has space"},
        {"id": "acme", "client_sync_path": "no-slash"},
        {"id": "acme", "client_auth": {"method": "bearer"}},
        {"id": "acme", "client_auth": {"method": "basic", "user": "u"}},
    ):
        # When posted / Then 422 with the pydantic error list
        status, answer = api.call("POST", "/tenant", body)
        assert status == 422, body
        assert isinstance(answer["detail"], list)
    # and no tenant was stored
    assert ok_json(api, "GET", "/tenants") == {"ok": True, "tenants": []}


# -- list and sync status -----------------------------------------------------------------------


def test_list_tenants_all_or_active_only(api: ApiClient) -> None:
    # Given an active and an inactive tenant
    create_tenant(api, "acme", name="Acme")
    create_tenant(api, "dormant", name="Dormant", active=False)
    # When the admin lists them / Then both, by id, or only the active one
    every = ok_json(api, "GET", "/tenants")
    assert [(t["id"], t["active"]) for t in every["tenants"]] == [
        ("acme", True),
        ("dormant", False),
    ]
    active = ok_json(api, "GET", "/tenants", query="active_only=true")
    assert [t["id"] for t in active["tenants"]] == ["acme"]
    assert ok_json(api, "GET", "/tenants", query="active_only=false") == every


def test_sync_status_of_every_tenant(api: ApiClient) -> None:
    # Given two tenants, one with a sync endpoint
    create_tenant(api, "acme", **ACME)
    create_tenant(api, "globex", name="Globex", active=False)
    # When the admin asks for the sync status
    before = time.time()
    body = ok_json(api, "GET", "/tenants/sync-status")
    # Then every tenant is listed with SPEC.md's fields, never synced so far: due now
    assert body["ok"] is True
    assert body["sync_interval_seconds"] == 300
    rows = {row["id"]: row for row in body["tenants"]}
    assert set(rows) == {"acme", "globex"}
    acme = rows["acme"]
    assert {k: acme[k] for k in ("name", "active", "client_base_url", "in_dnd")} == {
        "name": "Acme",
        "active": True,
        "client_base_url": "https://acme.example",
        "in_dnd": False,
    }
    assert "last_sync_ts" not in acme  # null fields are left out
    assert int(before) <= acme["next_sync_due"] <= time.time() + 1
    assert rows["globex"]["active"] is False
    assert "client_base_url" not in rows["globex"]
    assert "acme-bearer-secret" not in json.dumps(body)


# -- read and partial update --------------------------------------------------------------------


def test_put_changes_only_the_fields_given(api: ApiClient) -> None:
    # Given a tenant with every field set
    create_tenant(api, "acme", **ACME)
    before = tenant_view(api, "acme")
    # When only its name is put
    assert api.call("PUT", "/tenant/acme", {"name": "Acme Corp"}) == (200, {"ok": True})
    # Then only the name changed
    after = tenant_view(api, "acme")
    assert without_timestamps(after) == without_timestamps(before) | {"name": "Acme Corp"}
    assert after["created_at"] == before["created_at"]
    # When its client_auth is put, then only that changes (the password not shown)
    auth = {"method": "basic", "user": "sync-user", "password": "sync-pw"}
    assert api.call("PUT", "/tenant/acme", {"client_auth": auth}) == (200, {"ok": True})
    view = tenant_view(api, "acme")
    assert view["client_auth"] == {"method": "basic", "user": "sync-user"}
    assert view["name"] == "Acme Corp"
    assert view["client_base_url"] == "https://acme.example"
    # When it is deactivated, then it leaves the active-only list
    assert api.call("PUT", "/tenant/acme", {"active": False}) == (200, {"ok": True})
    assert tenant_view(api, "acme")["active"] is False
    assert ok_json(api, "GET", "/tenants", query="active_only=true")["tenants"] == []
    # When an empty update is put, then nothing but the change time moves
    unchanged = tenant_view(api, "acme")
    assert api.call("PUT", "/tenant/acme", {}) == (200, {"ok": True})
    assert without_timestamps(tenant_view(api, "acme")) == without_timestamps(unchanged)


def test_put_cannot_rename_a_tenant_through_its_body(api: ApiClient) -> None:
    # Given two tenants
    create_tenant(api, "acme", name="Acme")
    create_tenant(api, "globex", name="Globex")
    # When a PUT on acme carries another id in its body
    assert api.call("PUT", "/tenant/acme", {"id": "globex", "name": "X"}) == (200, {"ok": True})
    # Then acme changed, globex did not
    assert tenant_view(api, "acme")["name"] == "X"
    assert tenant_view(api, "globex")["name"] == "Globex"


def test_a_tenant_reads_and_updates_itself_with_its_own_key(api: ApiClient) -> None:
    # Given a tenant and its key
    key = create_tenant(api, "acme", **ACME)
    # When it reads itself / Then its view, the same as the admin's
    assert tenant_view(api, "acme", token=key) == tenant_view(api, "acme")
    # When it changes its sync path with its own key / Then the change is kept
    status, body = api.call("PUT", "/tenant/acme", {"client_sync_path": "/v2/sync"}, token=key)
    assert (status, body) == (200, {"ok": True})
    assert tenant_view(api, "acme")["client_sync_path"] == "/v2/sync"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/tenant/ghost", None),
        ("PUT", "/tenant/ghost", {"name": "Ghost"}),
        ("DELETE", "/tenant/ghost", None),
        ("POST", "/tenant/ghost/api-key", None),
        ("DELETE", "/tenant/ghost/api-key", None),
    ],
)
def test_an_unknown_tenant_is_a_404(api: ApiClient, method: str, path: str, body: Any) -> None:
    # Given no tenant "ghost" / When the admin acts on it / Then 404 naming it
    assert api.call(method, path, body) == (404, tenant_not_found("ghost"))
    # and nothing was created by the attempt
    assert ok_json(api, "GET", "/tenants")["tenants"] == []


# -- who may call -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/tenant", {"id": "acme", "name": "Mine now"}),
        ("POST", "/tenant", {"id": "newco"}),
        ("GET", "/tenants", None),
        ("GET", "/tenants/sync-status", None),
        ("DELETE", "/tenant/acme", None),
        ("POST", "/tenant/acme/api-key", None),
        ("DELETE", "/tenant/acme/api-key", None),
    ],
)
def test_admin_only_endpoints_refuse_a_tenant_token_even_for_its_own_tenant(
    api: ApiClient, method: str, path: str, body: Any
) -> None:
    # Given a tenant and its key
    key = create_tenant(api, "acme", name="Acme")
    before = tenant_view(api, "acme")
    # When it calls an admin-only endpoint / Then 403
    assert api.call(method, path, body, token=key) == (403, ADMIN_ONLY)
    # and nothing changed: same tenant, no new one, the key still works
    assert tenant_view(api, "acme") == before
    assert [t["id"] for t in ok_json(api, "GET", "/tenants")["tenants"]] == ["acme"]
    assert tenant_view(api, "acme", token=key) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/tenant", {"id": "acme"}),
        ("GET", "/tenants", None),
        ("GET", "/tenants/sync-status", None),
        ("GET", "/tenant/acme", None),
        ("PUT", "/tenant/acme", {"name": "X"}),
        ("DELETE", "/tenant/acme", None),
        ("POST", "/tenant/acme/api-key", None),
        ("DELETE", "/tenant/acme/api-key", None),
    ],
)
@pytest.mark.parametrize("token", [None, "not-a-key"], ids=["no token", "wrong token"])
def test_tenant_endpoints_need_a_valid_token(
    api: ApiClient, method: str, path: str, body: Any, token: str | None
) -> None:
    # Given a tenant
    create_tenant(api, "acme", name="Acme")
    before = tenant_view(api, "acme")
    # When called without a valid token / Then 401 and nothing changed
    assert api.call(method, path, body, token=token) == (401, INVALID_TOKEN)
    assert tenant_view(api, "acme") == before


# -- keys ---------------------------------------------------------------------------------------


def test_rotating_a_key_stops_the_old_one_at_once(api: ApiClient) -> None:
    # Given a tenant whose key has been used (and so may be cached)
    old = create_tenant(api, "acme", name="Acme")
    assert tenant_view(api, "acme", token=old)["id"] == "acme"
    # When the admin issues a new key
    status, body = api.call("POST", "/tenant/acme/api-key")
    # Then the answer carries it
    assert status == 200
    assert set(body) == {"ok", "api_key"}
    assert body["ok"] is True
    new = body["api_key"]
    assert new != old
    # and the old key is refused at once, the new one accepted
    assert api.call("GET", "/tenant/acme", token=old) == (401, INVALID_TOKEN)
    assert api.call("GET", "/status", token=old) == (401, INVALID_TOKEN)
    assert tenant_view(api, "acme", token=new)["id"] == "acme"
    # and the tenant itself is untouched
    assert tenant_view(api, "acme")["name"] == "Acme"


def test_revoking_a_key_leaves_the_tenant_without_one(api: ApiClient) -> None:
    # Given a tenant whose key has been used
    key = create_tenant(api, "acme", name="Acme")
    assert api.call("GET", "/status", token=key)[0] == 200
    # When the admin revokes it
    assert api.call("DELETE", "/tenant/acme/api-key") == (200, {"ok": True})
    # Then the key is refused, and the tenant is still there for the admin
    assert api.call("GET", "/status", token=key) == (401, INVALID_TOKEN)
    assert api.call("GET", "/accounts", token=key) == (401, INVALID_TOKEN)
    assert tenant_view(api, "acme")["name"] == "Acme"
    # When a new key is issued / Then that one works
    new = ok_json(api, "POST", "/tenant/acme/api-key")["api_key"]
    assert api.call("GET", "/status", token=new) == (200, {"ok": True, "active": True})
    assert api.call("GET", "/status", token=key) == (401, INVALID_TOKEN)


def test_keys_of_two_tenants_are_distinct(api: ApiClient) -> None:
    # Given two tenants / Then each key is its own tenant's
    acme = create_tenant(api, "acme")
    globex = create_tenant(api, "globex")
    assert acme != globex
    assert tenant_view(api, "acme", token=acme)["id"] == "acme"
    assert tenant_view(api, "globex", token=globex)["id"] == "globex"


# -- secrets at rest ----------------------------------------------------------------------------


def test_client_auth_secrets_are_never_shown_nor_stored_in_the_clear(
    api: ApiClient, aws: Any
) -> None:
    # Given a tenant with a bearer token and one with basic credentials
    create_tenant(api, "acme", **ACME)
    create_tenant(
        api,
        "globex",
        client_base_url="https://globex.example",
        client_auth={"method": "basic", "user": "gx-user", "password": "gx-password-123"},
    )
    # When they are read in every way the API offers
    answers = [
        ok_json(api, "GET", "/tenant/acme"),
        ok_json(api, "GET", "/tenant/globex"),
        ok_json(api, "GET", "/tenants"),
        ok_json(api, "GET", "/tenants/sync-status"),
    ]
    # Then neither secret is in any answer; the method and user are
    text = json.dumps(answers)
    assert "acme-bearer-secret" not in text
    assert "gx-password-123" not in text
    assert answers[0]["client_auth"] == {"method": "bearer"}
    assert answers[1]["client_auth"] == {"method": "basic", "user": "gx-user"}
    # and neither is anywhere in the raw tenants table
    raw = json.dumps(raw_items(aws.tables["tenants"]))
    assert "acme-bearer-secret" not in raw
    assert "gx-password-123" not in raw
    # also not after an update replaces the token
    api.call("PUT", "/tenant/acme", {"client_auth": {"method": "bearer", "token": "rotated-tok"}})
    assert "rotated-tok" not in json.dumps(raw_items(aws.tables["tenants"]))
    assert "rotated-tok" not in json.dumps(ok_json(api, "GET", "/tenant/acme"))


def test_smtp_password_is_encrypted_at_rest_and_still_delivers(
    api: ApiClient, aws: Any, sender: SenderDriver
) -> None:
    # Given an SMTP server that requires AUTH, and an account with its credentials
    with SmtpServer(credentials=("mailer", "smtp-pw-8431")) as server:
        posted = account_for(server, user="mailer", password="smtp-pw-8431")
        assert api.call("POST", "/account", posted) == (200, {"ok": True})
        # Then the stored item does not hold the password in the clear anywhere
        item = raw_item(aws.tables["accounts"], {"tenant_id": "acme", "id": "main"})
        assert "smtp-pw-8431" not in json.dumps(item)
        assert "smtp-pw-8431" not in json.dumps(raw_items(aws.tables["accounts"]))
        # and GET /accounts never returns it
        listed = ok_json(api, "GET", "/accounts", query="tenant_id=acme")
        assert "smtp-pw-8431" not in json.dumps(listed)
        assert "password" not in listed["accounts"][0]
        assert listed["accounts"][0]["user"] == "mailer"
        # When a message is sent through it
        assert add(api, message("m1"))[0] == 200
        sender.drain()
        # Then the server, after checking the credentials, received it
        [received] = server.handler.wait_for(1)
        assert received.message["Subject"] == "Subject m1"
        assert records_by_id(api, "acme")["m1"]["status"] == "sent"


def test_reposting_an_account_without_password_keeps_the_stored_one(
    api: ApiClient, aws: Any, sender: SenderDriver
) -> None:
    with SmtpServer(credentials=("mailer", "kept-pw-77")) as server:
        # Given an account with its password
        api.call("POST", "/account", account_for(server, user="mailer", password="kept-pw-77"))
        sealed = raw_item(aws.tables["accounts"], {"tenant_id": "acme", "id": "main"})
        # When it is posted again without a password (another field changed)
        changed = account_for(server, user="mailer", limit_per_hour=100)
        assert api.call("POST", "/account", changed) == (200, {"ok": True})
        # Then the change is kept and the account still has its password: a message
        # sent on a fresh connection authenticates and is delivered
        [account] = ok_json(api, "GET", "/accounts", query="tenant_id=acme")["accounts"]
        assert account["limit_per_hour"] == 100
        assert "password" not in account
        after = raw_item(aws.tables["accounts"], {"tenant_id": "acme", "id": "main"})
        assert "kept-pw-77" not in json.dumps(after)
        # (the sender's pool keys idle sessions without the password: start afresh, so the
        # delivery below really authenticates with what is stored now)
        runtime.smtp_pool().close_all()
        assert add(api, message("kept"))[0] == 200
        sender.drain()
        assert [r.message["Subject"] for r in server.handler.wait_for(1)] == ["Subject kept"]
        assert records_by_id(api, "acme")["kept"]["status"] == "sent"
        # When it is posted with a wrong password / Then delivery fails on AUTH: the server
        # really checks, so the delivery above used the kept password
        api.call("POST", "/account", account_for(server, user="mailer", password="wrong"))
        assert raw_item(aws.tables["accounts"], {"tenant_id": "acme", "id": "main"}) != sealed
        runtime.smtp_pool().close_all()
        assert add(api, message("refused"))[0] == 200
        sender.drain()
        assert records_by_id(api, "acme")["refused"]["status"] == "error"
        assert len(server.received) == 1


# -- accounts -----------------------------------------------------------------------------------


def test_the_admin_may_create_an_account_for_a_tenant_without_a_record(
    api: ApiClient, smtp_server: SmtpServer
) -> None:
    # Given no tenant record "loose" / When the admin posts an account for it
    posted = account_for(smtp_server, tenant_id="loose")
    assert api.call("POST", "/account", posted) == (200, {"ok": True})
    # Then the account is listed for that tenant, which still has no record
    listed = ok_json(api, "GET", "/accounts", query="tenant_id=loose")["accounts"]
    assert [(a["tenant_id"], a["id"]) for a in listed] == [("loose", "main")]
    assert api.call("GET", "/tenant/loose") == (404, tenant_not_found("loose"))


def test_a_tenant_token_without_tenant_id_acts_on_its_own_tenant(
    api: ApiClient, smtp_server: SmtpServer
) -> None:
    # Given a tenant and its key
    key = create_tenant(api, "acme")
    # When it posts an account without tenant_id
    body = account_for(smtp_server, id="own")
    del body["tenant_id"]
    assert api.call("POST", "/account", body, token=key) == (200, {"ok": True})
    # Then the account is its own
    listed = ok_json(api, "GET", "/accounts", token=key)["accounts"]
    assert [(a["tenant_id"], a["id"]) for a in listed] == [("acme", "own")]
    # and it may delete it without naming the tenant
    assert api.call("DELETE", "/account/own", token=key) == (200, {"ok": True})
    assert ok_json(api, "GET", "/accounts", query="tenant_id=acme")["accounts"] == []


def test_deleting_an_account(api: ApiClient, smtp_server: SmtpServer) -> None:
    # Given two tenants each with an account "main"
    api.call("POST", "/account", account_for(smtp_server))
    api.call("POST", "/account", account_for(smtp_server, tenant_id="globex"))
    # When acme's is deleted
    status, body = api.call("DELETE", "/account/main", query="tenant_id=acme")
    # Then ok, acme has none, globex keeps its own
    assert (status, body) == (200, {"ok": True})
    assert ok_json(api, "GET", "/accounts", query="tenant_id=acme")["accounts"] == []
    globex = ok_json(api, "GET", "/accounts", query="tenant_id=globex")["accounts"]
    assert [a["id"] for a in globex] == ["main"]
    # When it is deleted again, or an unknown one / Then 400 naming account and tenant
    assert api.call("DELETE", "/account/main", query="tenant_id=acme") == (
        400,
        {"detail": "Account 'main' not found for tenant 'acme'"},
    )
    assert api.call("DELETE", "/account/nope", query="tenant_id=globex") == (
        400,
        {"detail": "Account 'nope' not found for tenant 'globex'"},
    )


# -- delete -------------------------------------------------------------------------------------


def test_deleting_a_tenant_removes_all_it_owns_and_nothing_else(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given two tenants with an account "main" each and messages, one sent (with its event)
    key = create_tenant(api, "acme", name="Acme")
    create_tenant(api, "globex", name="Globex")
    for tenant_id in ("acme", "globex"):
        api.call("POST", "/account", account_for(smtp_server, tenant_id=tenant_id))
        assert add(api, message("sent-1", tenant_id=tenant_id))[0] == 200
    sender.drain()
    smtp_server.handler.wait_for(2)
    # and one message of acme still waiting in its queue
    assert add(api, message("waiting", tenant_id="acme"))[0] == 200
    assert stored_events("acme")
    globex_before = (
        ok_json(api, "GET", "/tenant/globex"),
        ok_json(api, "GET", "/accounts", query="tenant_id=globex"),
        ok_json(api, "GET", "/messages", query="tenant_id=globex&include_history=true"),
    )
    # When the admin deletes acme
    assert api.call("DELETE", "/tenant/acme") == (200, {"ok": True})
    # Then acme, its accounts, messages and events are gone
    assert api.call("GET", "/tenant/acme") == (404, tenant_not_found("acme"))
    assert ok_json(api, "GET", "/accounts", query="tenant_id=acme")["accounts"] == []
    assert ok_json(api, "GET", "/messages", query="tenant_id=acme")["messages"] == []
    assert stored_events("acme") == []
    for table in ("accounts", "messages", "bodies", "events"):
        leftovers = [i for i in raw_items(aws.tables[table]) if i["tenant_id"]["S"] == "acme"]
        assert leftovers == [], table
    # and its key no longer works
    assert api.call("GET", "/status", token=key) == (401, INVALID_TOKEN)
    # and its waiting message is never delivered
    sender.drain()
    assert sorted(r.message["X-Genro-Mail-ID"] for r in smtp_server.received) == [
        "sent-1",
        "sent-1",
    ]
    # and globex is untouched
    assert (
        ok_json(api, "GET", "/tenant/globex"),
        ok_json(api, "GET", "/accounts", query="tenant_id=globex"),
        ok_json(api, "GET", "/messages", query="tenant_id=globex&include_history=true"),
    ) == globex_before
    # When acme is deleted again / Then 404
    assert api.call("DELETE", "/tenant/acme") == (404, tenant_not_found("acme"))


def test_a_tenant_created_again_after_deletion_has_a_new_key(api: ApiClient) -> None:
    # Given a tenant deleted after its key was used
    old = create_tenant(api, "acme", name="Acme")
    assert api.call("GET", "/status", token=old)[0] == 200
    api.call("DELETE", "/tenant/acme")
    # When it is created again / Then a new key, and only that one works
    status, body = api.call("POST", "/tenant", {"id": "acme", "name": "Acme again"})
    assert status == 200
    new = body["api_key"]
    assert new != old
    assert api.call("GET", "/status", token=old) == (401, INVALID_TOKEN)
    assert tenant_view(api, "acme", token=new)["name"] == "Acme again"
