"""The api Lambda, called with the API Gateway events real HTTP requests become (moto behind)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local.events import LambdaContext, http_event
from tests.support.handlers import ADMIN_TOKEN, ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.sqs import queue_depths
from tests.support.tenants import create_tenant, ok_json, raw_item

INVALID_TOKEN = {"detail": "Invalid or missing API token"}


def add(api: ApiClient, *messages: dict[str, Any], **extra: Any) -> tuple[int, Any]:
    return api.call("POST", "/commands/add-messages", {"messages": list(messages)} | extra)


def listed(api: ApiClient, query: str = "") -> list[dict[str, Any]]:
    status, body = api.call("GET", "/messages", query=query)
    assert status == 200, body
    assert body["ok"] is True
    return list(body["messages"])


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in records}


@pytest.fixture
def with_account(api: ApiClient, smtp_server: SmtpServer) -> SmtpServer:
    """Given tenant acme with an account "main" on the test SMTP server."""
    assert api.call("POST", "/account", account_for(smtp_server)) == (200, {"ok": True})
    return smtp_server


# -- health and authentication ----------------------------------------------------------------


def test_health_needs_no_token(api: ApiClient) -> None:
    assert api.call("GET", "/health", token=None) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/status", None),
        ("GET", "/messages", None),
        ("GET", "/accounts", None),
        ("POST", "/account", {"id": "main", "tenant_id": "acme", "host": "h", "port": 25}),
        ("POST", "/commands/add-messages", {"messages": [message("m1")]}),
    ],
)
@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["no token", "wrong token"])
def test_without_a_valid_token_nothing_is_served(
    api: ApiClient, method: str, path: str, body: Any, token: str | None
) -> None:
    # Given no token, or a wrong one / When calling an endpoint that needs one / Then 401
    assert api.call(method, path, body, token=token) == (401, INVALID_TOKEN)


@pytest.mark.parametrize(
    "raw_body",
    ['{"messages": [{"id": "m1"}]}', "{not json", '{"id": "main", "port": "x"}'],
)
def test_401_wins_over_422(api: ApiClient, raw_body: str) -> None:
    # Given an invalid body and no token / When posted / Then 401: the shape of a valid
    # request is not disclosed to a caller without a token
    for path in ("/commands/add-messages", "/account"):
        assert api.call("POST", path, token=None, raw_body=raw_body) == (401, INVALID_TOKEN)
    # while with the token the same body is a 422
    status, _ = api.call("POST", "/commands/add-messages", raw_body=raw_body)
    assert status == 422


def test_status(api: ApiClient) -> None:
    assert api.call("GET", "/status") == (200, {"ok": True, "active": True})


# -- accounts ---------------------------------------------------------------------------------


def test_accounts_never_show_a_password(api: ApiClient, smtp_server: SmtpServer) -> None:
    # Given an account posted with credentials
    posted = account_for(smtp_server, user="mailer", password="s3cret-pw", limit_per_minute=10)
    assert api.call("POST", "/account", posted) == (200, {"ok": True})
    # When the accounts are listed
    status, body = api.call("GET", "/accounts")
    # Then the account is there, its password nowhere
    assert status == 200
    assert body["ok"] is True
    [account] = body["accounts"]
    assert {k: account[k] for k in ("id", "tenant_id", "host", "port", "user", "use_tls")} == {
        "id": "main",
        "tenant_id": "acme",
        "host": "127.0.0.1",
        "port": smtp_server.port,
        "user": "mailer",
        "use_tls": False,
    }
    assert account["limit_per_minute"] == 10
    assert account["ttl"] == 300
    assert "password" not in account
    assert "s3cret-pw" not in json.dumps(body)


def test_posting_an_account_again_updates_it(api: ApiClient, smtp_server: SmtpServer) -> None:
    api.call("POST", "/account", account_for(smtp_server, host="old.test"))
    _, before = api.call("GET", "/accounts", query="tenant_id=acme")
    api.call("POST", "/account", account_for(smtp_server, host="new.test"))
    _, after = api.call("GET", "/accounts", query="tenant_id=acme")
    [account] = after["accounts"]
    assert account["host"] == "new.test"
    assert account["created_at"] == before["accounts"][0]["created_at"]


def test_accounts_of_one_tenant_or_of_all(api: ApiClient, smtp_server: SmtpServer) -> None:
    api.call("POST", "/account", account_for(smtp_server))
    api.call("POST", "/account", account_for(smtp_server, tenant_id="globex", id="bulk"))
    _, acme = api.call("GET", "/accounts", query="tenant_id=acme")
    _, every = api.call("GET", "/accounts")
    assert [(a["tenant_id"], a["id"]) for a in acme["accounts"]] == [("acme", "main")]
    assert [(a["tenant_id"], a["id"]) for a in every["accounts"]] == [
        ("acme", "main"),
        ("globex", "bulk"),
    ]


def test_an_account_without_tenant_among_several_tenants_is_refused_naming_tenant_id(
    api: ApiClient, smtp_server: SmtpServer
) -> None:
    # Given two tenants, neither with this account
    create_tenant(api, "acme")
    create_tenant(api, "globex")
    body = account_for(smtp_server)
    del body["tenant_id"]
    # When the admin posts it without tenant_id / Then 422 naming tenant_id, nothing stored
    status, answer = api.call("POST", "/account", body)
    assert status == 422
    assert [item["loc"][-1] for item in answer["detail"]] == ["tenant_id"]
    assert api.call("GET", "/accounts")[1]["accounts"] == []


def test_an_account_without_tenant_goes_to_the_only_tenant_or_the_one_that_has_it(
    api: ApiClient, smtp_server: SmtpServer
) -> None:
    # Given one tenant
    create_tenant(api, "acme")
    body = account_for(smtp_server)
    del body["tenant_id"]
    # When the admin posts an account without tenant_id / Then it is that tenant's
    assert api.call("POST", "/account", body) == (200, {"ok": True})
    create_tenant(api, "globex")
    # and once there are two, a change without tenant_id goes to the one that has it
    assert api.call("POST", "/account", {"id": "main", "limit_per_minute": 7}) == (
        200,
        {"ok": True},
    )
    [account] = api.call("GET", "/accounts")[1]["accounts"]
    assert (account["tenant_id"], account["limit_per_minute"]) == ("acme", 7)


def test_on_a_fresh_proxy_an_account_without_tenant_makes_a_default_tenant(
    api: ApiClient, smtp_server: SmtpServer
) -> None:
    # Given no tenant at all (the architecture page's step 2) / When an account is posted
    body = {"id": "smtp-main", "host": "127.0.0.1", "port": smtp_server.port}
    assert api.call("POST", "/account", body) == (200, {"ok": True})
    # Then it belongs to a tenant "default", which now exists
    [account] = api.call("GET", "/accounts")[1]["accounts"]
    assert account["tenant_id"] == "default"
    assert [t["id"] for t in ok_json(api, "GET", "/tenants")["tenants"]] == ["default"]


def test_a_change_to_an_existing_account_keeps_the_fields_not_given(
    api: ApiClient, smtp_server: SmtpServer, aws: Any
) -> None:
    # Given an account with host, port, user, password and two limits
    api.call(
        "POST",
        "/account",
        account_for(smtp_server, user="mailer", password="pw", limit_per_hour=500),
    )
    # When only its minute limit is posted (the architecture page's "adjust rate limits")
    status, _ = api.call(
        "POST", "/account", {"id": "main", "tenant_id": "acme", "limit_per_minute": 50}
    )
    # Then that limit changed and everything else stayed, the password included
    assert status == 200
    [account] = api.call("GET", "/accounts", query="tenant_id=acme")[1]["accounts"]
    expected = account_for(smtp_server, user="mailer", limit_per_hour=500, limit_per_minute=50)
    assert {name: account.get(name) for name in expected if name != "password"} == {
        name: value for name, value in expected.items() if name != "password"
    }
    assert raw_item(aws.tables["accounts"], {"tenant_id": "acme", "id": "main"}).get("secret")
    # When a limit is given as null / Then it is cleared
    api.call("POST", "/account", {"id": "main", "tenant_id": "acme", "limit_per_hour": None})
    [account] = api.call("GET", "/accounts", query="tenant_id=acme")[1]["accounts"]
    assert "limit_per_hour" not in account


def test_a_new_account_needs_host_and_port(api: ApiClient) -> None:
    status, answer = api.call("POST", "/account", {"id": "new", "tenant_id": "acme"})
    assert status == 422
    assert [item["loc"] for item in answer["detail"]] == [["body", "host"], ["body", "port"]]
    assert api.call("GET", "/accounts")[1]["accounts"] == []


def test_limit_behavior_error_means_reject_and_an_unknown_one_lists_the_accepted(
    api: ApiClient, smtp_server: SmtpServer
) -> None:
    assert api.call("POST", "/account", account_for(smtp_server, limit_behavior="error"))[0] == 200
    [account] = api.call("GET", "/accounts")[1]["accounts"]
    assert account["limit_behavior"] == "reject"
    status, answer = api.call("POST", "/account", account_for(smtp_server, limit_behavior="x"))
    assert status == 422
    [problem] = answer["detail"]
    assert problem["loc"] == ["body", "limit_behavior"]
    assert all(word in problem["msg"] for word in ("defer", "reject", "error"))


def test_max_connections_is_shown_kept_on_a_change_and_bounded(
    api: ApiClient, smtp_server: SmtpServer
) -> None:
    # Given an account created without max_connections / Then it shows the default, 4
    assert api.call("POST", "/account", account_for(smtp_server))[0] == 200
    [account] = api.call("GET", "/accounts")[1]["accounts"]
    assert account["max_connections"] == 4
    # When it is set, then another field changed / Then the set value stays
    api.call("POST", "/account", {"id": "main", "tenant_id": "acme", "max_connections": 8})
    api.call("POST", "/account", {"id": "main", "tenant_id": "acme", "ttl": 60})
    [account] = api.call("GET", "/accounts")[1]["accounts"]
    assert (account["max_connections"], account["ttl"]) == (8, 60)
    # When it is out of 1..32 / Then a 422 names it, and the account keeps its value
    for wrong in (0, 33):
        status, answer = api.call(
            "POST", "/account", {"id": "main", "tenant_id": "acme", "max_connections": wrong}
        )
        assert status == 422
        assert [item["loc"] for item in answer["detail"]] == [["body", "max_connections"]]
    assert api.call("GET", "/accounts")[1]["accounts"][0]["max_connections"] == 8


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_json_body_is_read_whatever_its_content_type(
    api: ApiClient, smtp_server: SmtpServer, content_type: str | None
) -> None:
    # Given a JSON body sent as curl -d sends it / Then it is taken as JSON
    event = http_event(
        "POST",
        "/account",
        headers={"X-API-Token": ADMIN_TOKEN}
        | ({"content-type": content_type} if content_type else {}),
        body=json.dumps(account_for(smtp_server)),
    )
    assert api.handler.lambda_handler(event, LambdaContext())["statusCode"] == 200
    assert [a["id"] for a in api.call("GET", "/accounts")[1]["accounts"]] == ["main"]
    # and a body that is not JSON is a 422, whatever it says it is
    form = http_event(
        "POST",
        "/account",
        headers={"X-API-Token": ADMIN_TOKEN, "content-type": "application/x-www-form-urlencoded"},
        body="id=main&host=x",
    )
    assert api.handler.lambda_handler(form, LambdaContext())["statusCode"] == 422


# -- add-messages -----------------------------------------------------------------------------


@pytest.mark.usefixtures("with_account")
def test_submitted_messages_are_stored_and_queued_by_priority(api: ApiClient, aws: Any) -> None:
    # Given messages of every priority, as labels and numbers, and one without
    status, body = add(
        api,
        message("urgent", priority="immediate"),
        message("reset", priority=1),
        message("news", priority="low"),
        message("plain"),
        message("clamped", priority=7),
    )
    # Then all are queued
    assert (status, body) == (200, {"ok": True, "queued": 5, "rejected": []})
    # and listed as pending with their priority and payload, oldest first
    records = by_id(listed(api))
    assert {i: r["priority"] for i, r in records.items()} == {
        "urgent": 0,
        "reset": 1,
        "news": 3,
        "plain": 2,
        "clamped": 3,
    }
    assert {r["status"] for r in records.values()} == {"pending"}
    urgent = records["urgent"]
    assert urgent["pk"] == "acme/urgent"
    assert urgent["tenant_id"] == "acme"
    assert urgent["account_id"] == "main"
    assert urgent["message"]["from"] == "app@acme.test"
    assert urgent["message"]["subject"] == "Subject urgent"
    assert "sent_ts" not in urgent
    assert "error" not in urgent
    # and each reference waits on the queue of its priority
    assert queue_depths(aws.queues) == {"immediate": 1, "high": 1, "medium": 1, "low": 2}


@pytest.mark.usefixtures("with_account")
def test_default_priority_applies_to_messages_without_one(api: ApiClient) -> None:
    add(api, message("a"), message("b", priority="high"), default_priority="immediate")
    assert {r["id"]: r["priority"] for r in listed(api)} == {"a": 0, "b": 1}


@pytest.mark.usefixtures("with_account")
def test_recipients_as_a_comma_separated_string(api: ApiClient) -> None:
    assert add(api, message("m1", to="a@x.test, b@x.test"))[0] == 200
    assert listed(api)[0]["message"]["to"] == ["a@x.test", "b@x.test"]


@pytest.mark.usefixtures("with_account")
def test_malformed_json_is_a_422(api: ApiClient) -> None:
    status, body = api.call("POST", "/commands/add-messages", raw_body='{"messages": [')
    assert status == 422
    assert isinstance(body["detail"], list)
    assert body["detail"][0]["type"] == "json_invalid"
    assert listed(api) == []


@pytest.mark.usefixtures("with_account")
def test_a_message_without_to_refuses_the_whole_request(api: ApiClient) -> None:
    # Given a valid message and one without `to`
    incomplete = message("m2")
    del incomplete["to"]
    status, body = add(api, message("m1"), incomplete)
    # Then 422 naming the field of the faulty message
    assert status == 422
    assert body["detail"] == [
        {"loc": ["body", "messages", 1, "to"], "msg": "Field required", "type": "missing"}
    ]
    # and nothing at all is stored
    assert listed(api) == []


@pytest.mark.usefixtures("with_account")
def test_an_unknown_priority_label_is_a_422(api: ApiClient) -> None:
    status, body = add(api, message("m1", priority="urgent"))
    assert status == 422
    assert [item["loc"] for item in body["detail"]] == [["body", "messages", 0, "priority"]]
    assert "urgent" in body["detail"][0]["msg"]
    assert listed(api) == []


@pytest.mark.usefixtures("with_account")
def test_a_local_file_attachment_is_a_422(api: ApiClient) -> None:
    attachment = {"filename": "a.pdf", "storage_path": "/etc/passwd"}
    status, body = add(api, message("m1", attachments=[attachment]))
    assert status == 422
    assert "local file" in body["detail"][0]["msg"]


@pytest.mark.usefixtures("with_account")
def test_more_than_1000_messages_is_a_400(api: ApiClient) -> None:
    status, body = add(api, *(message(f"m{n}") for n in range(1001)))
    assert status == 400
    assert "1001" in body["detail"]
    assert listed(api) == []


@pytest.mark.usefixtures("with_account")
def test_resubmitting_a_pending_message_replaces_it(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a pending message
    add(api, message("m1", subject="First draft"))
    # When it is submitted again with another subject
    status, body = add(api, message("m1", subject="Final version"))
    # Then it counts as queued, and replaces the first one without a second reference
    assert (status, body) == (200, {"ok": True, "queued": 1, "rejected": []})
    [record] = listed(api)
    assert record["message"]["subject"] == "Final version"
    assert record["status"] == "pending"
    assert queue_depths(aws.queues)["medium"] == 1
    # and once delivered, one message went out, the final one
    sender.drain()
    assert [r.message["Subject"] for r in smtp_server.received] == ["Final version"]


@pytest.mark.usefixtures("with_account")
def test_nothing_queued_with_a_reason_other_than_already_sent_is_a_400(
    api: ApiClient, sender: SenderDriver
) -> None:
    # Given a sent message
    add(api, message("m1"))
    sender.drain()
    # When it is resubmitted with one for an unknown account / Then 400 listing both
    status, body = add(api, message("m1"), message("m2", account_id="ghost"))
    assert status == 400
    assert sorted(r["id"] for r in body["detail"]["rejected"]) == ["m1", "m2"]
    assert {r["id"]: r["reason"] for r in body["detail"]["rejected"]}["m1"] == "already sent"


@pytest.mark.usefixtures("with_account")
def test_resubmitting_a_sent_message_is_rejected_as_already_sent(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a message that was sent
    add(api, message("m1"))
    sender.drain()
    assert listed(api)[0]["status"] == "sent"
    # When it is submitted again, alone / Then 200: "already sent" is a normal outcome
    assert add(api, message("m1", subject="Again")) == (
        200,
        {"ok": True, "queued": 0, "rejected": [{"id": "m1", "reason": "already sent"}]},
    )
    # When submitted with a new one / Then the new one is queued, the old one rejected
    status, body = add(api, message("m1", subject="Again"), message("m2"))
    assert (status, body) == (
        200,
        {"ok": True, "queued": 1, "rejected": [{"id": "m1", "reason": "already sent"}]},
    )
    # and the sent message is unchanged and not sent twice
    sender.drain()
    records = by_id(listed(api))
    assert records["m1"]["message"]["subject"] == "Subject m1"
    assert records["m1"]["status"] == "sent"
    assert [r.message["X-Genro-Mail-ID"] for r in smtp_server.received] == ["m1", "m2"]


@pytest.mark.usefixtures("with_account")
def test_an_unknown_account_is_rejected_but_recorded_with_an_error_event(
    api: ApiClient, aws: Any
) -> None:
    # Given a message for an account the tenant does not have, and a good one
    status, body = add(api, message("lost", account_id="nope"), message("ok"))
    # Then the good one is queued and the other rejected with the reason
    reason = "Account 'nope' not found for tenant 'acme'"
    assert (status, body) == (
        200,
        {"ok": True, "queued": 1, "rejected": [{"id": "lost", "reason": reason}]},
    )
    # and the rejected one is stored as failed, with an error event for the delivery report
    lost = by_id(listed(api, "include_history=true"))["lost"]
    assert lost["status"] == "error"
    assert lost["error"] == reason
    assert "error_ts" in lost
    assert [(e["event_type"], e["description"]) for e in lost["history"]] == [("error", reason)]
    assert "reported_ts" not in lost["history"][0]
    # but never queued
    assert sum(queue_depths(aws.queues).values()) == 1


@pytest.mark.usefixtures("with_account")
def test_without_tenant_id_the_tenant_is_the_accounts_owner(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a message without tenant_id, for the account "main" that only acme has
    legacy = message("m1")
    del legacy["tenant_id"]
    assert add(api, legacy) == (200, {"ok": True, "queued": 1, "rejected": []})
    # Then it belongs to acme, and is delivered through acme's account
    [record] = listed(api, "tenant_id=acme")
    assert record["tenant_id"] == "acme"
    assert record["message"]["tenant_id"] == "acme"
    sender.drain()
    assert listed(api, "tenant_id=acme")[0]["status"] == "sent"
    assert len(smtp_server.received) == 1


@pytest.mark.usefixtures("with_account")
def test_without_tenant_id_an_ambiguous_or_unknown_account_is_a_422(
    api: ApiClient, smtp_server: SmtpServer
) -> None:
    # Given a second tenant with an account also called "main"
    api.call("POST", "/account", account_for(smtp_server, tenant_id="globex"))
    ambiguous = message("m1")
    unknown = message("m2", account_id="nobody-has-it")
    del ambiguous["tenant_id"], unknown["tenant_id"]
    status, body = add(api, ambiguous, unknown)
    assert status == 422
    assert [item["loc"] for item in body["detail"]] == [
        ["body", "messages", 0, "tenant_id"],
        ["body", "messages", 1, "tenant_id"],
    ]
    assert "2 tenants" in body["detail"][0]["msg"]
    assert listed(api) == []


# -- listing ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("with_account")
def test_limit_and_active_only(api: ApiClient, sender: SenderDriver) -> None:
    # Given two sent messages and, later, a pending one
    add(api, message("m1"), message("m2"))
    sender.drain()
    add(api, message("m3"))
    # Then all come oldest first; limit keeps the oldest; active_only leaves finished ones out
    assert [r["id"] for r in listed(api)] == ["m1", "m2", "m3"]
    assert [r["id"] for r in listed(api, "limit=2")] == ["m1", "m2"]
    assert [r["id"] for r in listed(api, "active_only=true")] == ["m3"]
    assert [r["id"] for r in listed(api, "active_only=true&limit=1")] == ["m3"]
    assert [r["status"] for r in listed(api)] == ["sent", "sent", "pending"]
    # and history only when asked for
    assert "history" not in listed(api)[0]
    assert [e["event_type"] for e in listed(api, "include_history=true")[0]["history"]] == ["sent"]


def test_a_limit_below_one_is_a_422(api: ApiClient) -> None:
    status, body = api.call("GET", "/messages", query="limit=0")
    assert status == 422
    assert body["detail"][0]["loc"] == ["query", "limit"]


@pytest.mark.usefixtures("with_account")
def test_messages_of_one_tenant(api: ApiClient, smtp_server: SmtpServer) -> None:
    api.call("POST", "/account", account_for(smtp_server, tenant_id="globex"))
    add(api, message("a1"), message("g1", tenant_id="globex"))
    assert [r["id"] for r in listed(api, "tenant_id=globex")] == ["g1"]
    assert sorted(r["id"] for r in listed(api)) == ["a1", "g1"]


def test_an_unknown_path_is_a_404(api: ApiClient) -> None:
    assert api.call("GET", "/nowhere") == (404, {"detail": "Not Found"})
