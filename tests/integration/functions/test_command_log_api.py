"""GET /command-log and /command-log/export over the api handler on moto: every
state-changing call is there, masked, with its answer; reads and refused callers are not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailproxy.store import command_log as command_log_store
from tests.support.handlers import ApiClient, message


def _new_tenant(api: ApiClient, tenant_id: str = "acme") -> str:
    status, body = api.call("POST", "/tenant", {"id": tenant_id, "name": tenant_id.title()})
    assert status == 200
    return body["api_key"]


def _commands(api: ApiClient, query: str = "") -> list[dict[str, Any]]:
    status, body = api.call("GET", "/command-log", query=query)
    assert status == 200
    assert body["total"] == len(body["commands"])
    return body["commands"]


def test_state_changing_calls_are_logged_newest_first_with_secrets_masked(api: ApiClient) -> None:
    # Given a tenant, its account with a password and one message, then a read
    key = _new_tenant(api)
    account = {"id": "main", "tenant_id": "acme", "host": "h.test", "port": 25, "password": "pw1"}
    assert api.call("POST", "/account", account, token=key)[0] == 200
    assert api.call("POST", "/commands/add-messages", {"messages": [message("m1")]})[0] == 200
    assert api.call("GET", "/accounts", query="tenant_id=acme")[0] == 200
    # When the admin reads the log
    commands = _commands(api)
    # Then the three writes are there, newest first, the read is not
    assert [c["endpoint"] for c in commands] == [
        "POST /commands/add-messages",
        "POST /account",
        "POST /tenant",
    ]
    added, account_call, tenant_call = commands
    assert account_call["tenant_id"] == "acme"
    assert account_call["response_status"] == 200
    # And the password never reaches the log, nor the tenant's new key
    assert account_call["payload"]["password"] == "***"
    assert "pw1" not in json.dumps(commands)
    assert key not in json.dumps(commands)
    assert added["payload"]["messages"][0]["id"] == "m1"
    assert tenant_call["tenant_id"] == "acme"
    assert isinstance(added["id"], int)
    assert added["id"] > account_call["id"]


def test_a_refused_call_is_logged_with_its_answer_and_an_unauthorized_one_is_not(
    api: ApiClient,
) -> None:
    _new_tenant(api)
    # Given a request that fails validation, and one with a wrong token
    assert api.call("POST", "/account", {"id": "main", "tenant_id": "acme"})[0] == 422
    assert api.call("POST", "/tenant", {"id": "beta"}, token="wrong")[0] == 401
    # Then the 422 is in the log with its status, the 401 is not
    commands = _commands(api)
    assert [(c["endpoint"], c["response_status"]) for c in commands] == [
        ("POST /account", 422),
        ("POST /tenant", 200),
    ]


def test_filters_by_tenant_endpoint_and_limit(api: ApiClient) -> None:
    _new_tenant(api, "acme")
    _new_tenant(api, "beta")
    assert api.call("DELETE", "/tenant/beta")[0] == 200
    assert [c["endpoint"] for c in _commands(api, "tenant_id=beta")] == [
        "DELETE /tenant/beta",
        "POST /tenant",
    ]
    assert [c["endpoint"] for c in _commands(api, "endpoint_filter=DELETE")] == [
        "DELETE /tenant/beta"
    ]
    assert len(_commands(api, "limit=1")) == 1


def test_the_export_is_oldest_first_and_replays_the_same_calls(api: ApiClient) -> None:
    _new_tenant(api)
    api.call("DELETE", "/account/main", query="tenant_id=acme")
    status, body = api.call("GET", "/command-log/export")
    assert status == 200
    assert [(c["endpoint"], c["tenant_id"]) for c in body["commands"]] == [
        ("POST /tenant", "acme"),
        ("DELETE /account/main?tenant_id=acme", "acme"),
    ]
    assert set(body["commands"][0]) == {"endpoint", "tenant_id", "payload", "command_ts"}


def test_only_the_admin_reads_the_log(api: ApiClient) -> None:
    key = _new_tenant(api)
    assert api.call("GET", "/command-log", token=key)[0] == 403
    assert api.call("GET", "/command-log/export", token=key)[0] == 403
    assert api.call("GET", "/command-log", token=None)[0] == 401


def test_a_failing_log_write_never_fails_the_call(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a command log table that refuses every write
    def refuse(self: Any, record: Any) -> bool:
        raise command_log_store.StorageFailure("DynamoDB ProvisionedThroughputExceededException")

    monkeypatch.setattr(command_log_store.CommandLogRecords, "put_command", refuse)
    # When a tenant is created
    status, body = api.call("POST", "/tenant", {"id": "acme"})
    # Then the call succeeds as it would have
    assert status == 200
    assert body["api_key"]
