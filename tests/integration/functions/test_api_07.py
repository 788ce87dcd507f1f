"""genro-mail-proxy 0.7's routes: the shapes 0.7 answers, over the same use cases as the 0.6
routes (real handler invocations, moto behind)."""

from __future__ import annotations

from typing import Any

from tests.support.handlers import ApiClient, message
from tests.support.tenants import create_tenant

ACCOUNT = {"id": "main", "tenant_id": "acme", "host": "h", "port": 25, "password": "s3cret"}


def ok(api: ApiClient, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    status, answer = api.call(method, path, body, **kwargs)
    assert status == 200, (method, path, status, answer)
    return answer


def test_status_and_run_now_answer_as_0_7_does(api: ApiClient) -> None:
    # When the admin checks the service and wakes it / Then 0.7's answers
    assert ok(api, "GET", "/instance/status") == {"ok": True, "active": True}
    assert ok(api, "POST", "/instance/run_now", {}) == {"ok": True}
    assert ok(api, "POST", "/instance/run_now") == {"ok": True}


def test_a_tenant_is_added_read_listed_updated_and_deleted(api: ApiClient) -> None:
    # When the admin adds a tenant / Then its record, with its key this once
    added = ok(api, "POST", "/tenants/add", {"id": "acme", "name": "Acme", "rate_limits": None})
    assert added["id"] == "acme"
    assert added["name"] == "Acme"
    assert added["api_key"]
    again = ok(api, "POST", "/tenants/add", {"id": "acme", "name": "Acme"})
    assert "api_key" not in again
    # Then it is listed as a bare array, and read by its id
    assert [tenant["id"] for tenant in ok(api, "GET", "/tenants/list")] == ["acme"]
    assert ok(api, "GET", "/tenants/get", query="tenant_id=acme")["name"] == "Acme"
    # When its name is updated (the fields sent as null stay as they are)
    updated = ok(
        api, "POST", "/tenants/update", {"tenant_id": "acme", "name": "ACME", "active": None}
    )
    # Then the updated record comes back
    assert updated["name"] == "ACME"
    assert updated["active"] is True
    # When it is deleted / Then true, and it is gone
    assert ok(api, "POST", "/tenants/delete", {"tenant_id": "acme"}) is True
    assert api.call("GET", "/tenants/get", query="tenant_id=acme")[0] == 404


def test_api_keys_are_created_with_an_expiry_and_revoked(api: ApiClient) -> None:
    create_tenant(api, "acme")
    # When the admin creates a key that expires in the past
    made = ok(api, "POST", "/tenants/create_api_key", {"tenant_id": "acme", "expires_at": 1})
    assert made["ok"] is True
    assert made["tenant_id"] == "acme"
    assert made["api_key"]
    # Then it is refused already; a key without expiry works until it is revoked
    assert api.call("GET", "/instance/status", token=made["api_key"])[0] == 401
    key = ok(api, "POST", "/tenants/create_api_key", {"tenant_id": "acme"})["api_key"]
    assert api.call("GET", "/instance/status", token=key)[0] == 200
    revoked = ok(api, "POST", "/tenants/revoke_api_key", {"tenant_id": "acme"})
    assert revoked == {"ok": True, "tenant_id": "acme", "message": "API key revoked"}
    assert api.call("GET", "/instance/status", token=key)[0] == 401
    # Then an unknown tenant is a 404, not 0.7's 500
    assert api.call("POST", "/tenants/revoke_api_key", {"tenant_id": "nobody"})[0] == 404


def test_accounts_answer_their_record_with_a_pk_and_never_the_password(api: ApiClient) -> None:
    create_tenant(api, "acme")
    # When an account is added / Then its record, with the pk and no password
    added = ok(api, "POST", "/accounts/add", ACCOUNT)
    assert added["pk"] == "acme/main"
    assert added["host"] == "h"
    assert "password" not in added
    # Then it is listed as a bare array, and read by tenant and id
    assert [item["id"] for item in ok(api, "GET", "/accounts/list", query="tenant_id=acme")] == [
        "main"
    ]
    got = ok(api, "GET", "/accounts/get", query="tenant_id=acme&account_id=main")
    assert got == added
    assert api.call("GET", "/accounts/get", query="tenant_id=acme&account_id=x")[0] == 404
    # When it is deleted / Then it is gone
    assert ok(api, "POST", "/accounts/delete", {"tenant_id": "acme", "account_id": "main"}) == {
        "ok": True
    }
    assert ok(api, "GET", "/accounts/list", query="tenant_id=acme") == []


def test_the_tenant_of_an_account_and_of_a_listing_is_required(api: ApiClient) -> None:
    create_tenant(api, "acme")
    # When the admin leaves the tenant out / Then a 422 naming it (0.7 would fail with a 500)
    status, body = api.call("POST", "/accounts/add", {"id": "main", "host": "h", "port": 25})
    assert status == 422
    assert body["detail"][0]["loc"] == ["body", "tenant_id"]
    without = {key: value for key, value in message("m1").items() if key != "tenant_id"}
    status, body = api.call("POST", "/messages/add", without)
    assert status == 422
    assert body["detail"][0]["loc"] == ["body", "tenant_id"]
    for path in ("/accounts/list", "/messages/list", "/messages/cleanup"):
        status, body = api.call("GET", path)
        assert (status, body["detail"][0]["loc"]) == (422, ["query", "tenant_id"]), path


def test_messages_are_added_read_listed_and_deleted_by_pk(api: ApiClient) -> None:
    create_tenant(api, "acme")
    ok(api, "POST", "/accounts/add", ACCOUNT)
    # When one message is added / Then its record: 0.7's field names, every field present
    as_07 = {key: value for key, value in message("m1").items() if key != "from"}
    record = ok(api, "POST", "/messages/add", as_07 | {"from_addr": "a@acme.test"})
    assert record["pk"] == "acme/m1"
    assert record["status"] == "pending"
    assert record["payload"]["subject"] == "Subject m1"
    assert record["smtp_ts"] is None
    assert "message" not in record
    assert "sent_ts" not in record
    # Then it is read by its id, and listed as a bare array
    assert ok(api, "GET", "/messages/get", query="tenant_id=acme&message_id=m1") == record
    assert ok(api, "GET", "/messages/get", query="tenant_id=acme&id=m1") == record
    assert [item["pk"] for item in ok(api, "GET", "/messages/list", query="tenant_id=acme")] == [
        "acme/m1"
    ]
    assert api.call("GET", "/messages/get", query="tenant_id=acme&message_id=nope")[0] == 404
    # When it is deleted by its pk / Then true, and false the second time
    assert ok(api, "POST", "/messages/delete", {"message_pk": "acme/m1"}) is True
    assert ok(api, "POST", "/messages/delete", {"message_pk": "acme/m1"}) is False
    assert ok(api, "POST", "/messages/delete", {"message_pk": "no-slash"}) is False


def test_a_batch_everything_rejected_is_still_a_200(api: ApiClient) -> None:
    create_tenant(api, "acme")
    # When no message of the batch can be queued (its account does not exist)
    answer = ok(api, "POST", "/messages/add_batch", {"messages": [message("m1")]})
    # Then 0.7's 200, with the reasons
    assert answer["ok"] is True
    assert answer["queued"] == 0
    assert [item["id"] for item in answer["rejected"]] == ["m1"]


def test_delete_batch_and_cleanup_answer_their_counts(api: ApiClient) -> None:
    create_tenant(api, "acme")
    ok(api, "POST", "/accounts/add", ACCOUNT)
    ok(api, "POST", "/messages/add_batch", {"messages": [message("m1"), message("m2")]})
    deleted = ok(api, "POST", "/messages/delete_batch", {"tenant_id": "acme", "ids": ["m1", "x"]})
    assert deleted == {"ok": True, "removed": 1, "not_found": ["x"], "unauthorized": []}
    cleaned = ok(api, "GET", "/messages/cleanup", query="tenant_id=acme&older_than_seconds=0")
    assert cleaned == {"ok": True, "removed": 0}
    # Then the cleanup, a GET that changes state, is in the command log as 0.6's POST is
    logged = ok(api, "GET", "/command_log/list", query="tenant_id=acme&endpoint_filter=cleanup")
    assert [entry["endpoint"] for entry in logged] == [
        "GET /messages/cleanup?tenant_id=acme&older_than_seconds=0"
    ]


def test_suspend_and_activate_by_instance_and_by_tenant(api: ApiClient) -> None:
    create_tenant(api, "acme")
    # When a batch is suspended, then the tenant's whole sending
    held = ok(api, "POST", "/instance/suspend", {"tenant_id": "acme", "batch_code": "b1"})
    assert held["ok"] is True
    assert held["tenant_id"] == "acme"
    assert held["suspended_batches"] == ["b1"]
    held = ok(api, "POST", "/tenants/suspend_batch", {"tenant_id": "acme"})
    assert held["suspended_batches"] == ["*"]
    assert ok(api, "GET", "/tenants/get_suspended_batches", query="tenant_id=acme") == {
        "ok": True,
        "tenant_id": "acme",
        "suspended_batches": ["*"],
    }
    # When everything is activated / Then nothing is held
    released = ok(api, "POST", "/tenants/activate_batch", {"tenant_id": "acme"})
    assert released["suspended_batches"] == []
    assert ok(api, "POST", "/instance/activate", {"tenant_id": "acme"})["suspended_batches"] == []


def test_instance_and_bounce_settings_without_their_prefix(api: ApiClient) -> None:
    # When the name and a bounce setting are changed
    assert ok(api, "POST", "/instance/update", {"name": "prod"}) == {"ok": True}
    changed = ok(
        api, "POST", "/instance/set_bounce_config", {"poll_interval": 120, "enabled": None}
    )
    assert changed["ok"] is True
    # Then the instance shows them, and the bounce config without the bounce_ prefix
    instance = ok(api, "GET", "/instance/get")
    assert instance["ok"] is True
    assert instance["name"] == "prod"
    config = ok(api, "GET", "/instance/get_bounce_config")
    assert config["poll_interval"] == 120
    assert config["enabled"] is False
    assert "imap_password" not in config
    assert "bounce_poll_interval" not in config
    assert ok(api, "POST", "/instance/reload_bounce") == {
        "ok": True,
        "enabled": False,
        "message": "Config reloaded",
    }


def test_invalid_settings_are_a_422_naming_0_7s_field(api: ApiClient) -> None:
    status, body = api.call("POST", "/instance/set_bounce_config", {"poll_interval": 0})
    assert status == 422
    assert body["detail"][0]["loc"] == ["body", "poll_interval"]
    status, body = api.call("POST", "/instance/update", {"api_token": "new"})
    assert status == 422
    assert body["detail"][0]["loc"] == ["body", "api_token"]


def test_openapi_names_each_0_7_answer_once(api: ApiClient) -> None:
    # Given /openapi.json / Then every 0.7 route is there with its answer, each schema named
    spec = ok(api, "GET", "/openapi.json")
    assert not [name for name in spec["components"]["schemas"] if "__" in name]
    listed = spec["paths"]["/messages/list"]["get"]["responses"]["200"]["content"]
    assert listed["application/json"]["schema"]["type"] == "array"
    deleted = spec["paths"]["/messages/delete"]["post"]["responses"]["200"]["content"]
    assert deleted["application/json"]["schema"]["type"] == "boolean"


def test_the_command_log_is_a_bare_array(api: ApiClient) -> None:
    create_tenant(api, "acme")
    listed = ok(api, "GET", "/command_log/list", query="tenant_id=acme")
    assert [entry["endpoint"] for entry in listed] == ["POST /tenant"]
    assert ok(api, "GET", "/command_log/list", query="tenant_id=acme&offset=1") == []
    exported = ok(api, "GET", "/command_log/export", query="tenant_id=acme")
    assert [entry["endpoint"] for entry in exported] == ["POST /tenant"]
    # Then one is read by its id; an id never given is a 404
    got = ok(api, "GET", "/command_log/get", query=f"command_id={listed[0]['id']}")
    assert got == listed[0]
    assert api.call("GET", "/command_log/get", query="command_id=1")[0] == 404
    assert api.call("GET", "/command_log/get", query="command_id=-1")[0] == 422


def test_a_tenant_token_sees_only_its_tenant(api: ApiClient) -> None:
    key = create_tenant(api, "acme")
    create_tenant(api, "beta")
    ok(api, "POST", "/accounts/add", ACCOUNT | {"tenant_id": "beta"})
    ok(api, "POST", "/messages/add", message("m1", tenant_id="beta"))
    # When acme's token names beta, in a query, a body or a pk / Then 401 each time
    assert api.call("GET", "/messages/list", query="tenant_id=beta", token=key)[0] == 401
    assert api.call("GET", "/messages/get", query="tenant_id=beta&id=m1", token=key)[0] == 401
    assert api.call("POST", "/messages/delete", {"message_pk": "beta/m1"}, token=key)[0] == 401
    assert api.call("POST", "/instance/run_now", {"tenant_id": "beta"}, token=key)[0] == 401
    # Then beta's message is still there
    assert ok(api, "GET", "/messages/get", query="tenant_id=beta&id=m1")["id"] == "m1"


def test_enterprise_and_unserved_0_7_routes_are_a_404_that_says_so(api: ApiClient) -> None:
    for method, path in (
        ("GET", "/storages/list"),
        ("POST", "/instance/upgrade_to_ee"),
        ("POST", "/accounts/add_pec"),
    ):
        status, body = api.call(method, path, {})
        assert status == 404, path
        assert "enterprise" in body["detail"], path
    status, body = api.call("POST", "/command_log/purge", {"threshold_ts": 1})
    assert status == 404
    assert "not available in this proxy" in body["detail"]
    assert api.call("GET", "/nothing/here") == (404, {"detail": "Not Found"})
