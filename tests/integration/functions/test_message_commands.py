"""The /commands that act on stored messages and on a tenant's sending, through the api Lambda
(moto behind, a real SMTP server, the real sender draining the queues): delete-messages,
cleanup-messages, suspend and activate."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.tenants import (
    add_unreported_event,
    claim_for_sending,
    create_tenant,
    mark_events_reported,
    message_ids,
    ok_json,
    records_by_id,
    stored_events,
    tenant_not_found,
)

LATER = int(time.time()) + 86_400


def add(api: ApiClient, *messages: dict[str, Any], token: Any = ...) -> tuple[int, Any]:
    return api.call("POST", "/commands/add-messages", {"messages": list(messages)}, token=token)


def delete(
    api: ApiClient, ids: list[str], query: str = "tenant_id=acme", token: Any = ...
) -> tuple[int, Any]:
    return api.call("POST", "/commands/delete-messages", {"ids": ids}, query=query, token=token)


def cleanup(api: ApiClient, body: Any = None, query: str = "tenant_id=acme") -> tuple[int, Any]:
    return api.call("POST", "/commands/cleanup-messages", body, query=query)


def delivered_ids(server: SmtpServer) -> list[str]:
    return sorted(str(r.message["X-Genro-Mail-ID"]) for r in server.received)


@pytest.fixture
def acme(api: ApiClient, smtp_server: SmtpServer) -> str:
    """Given tenant acme (its key returned) with an account "main" on the test SMTP server."""
    key = create_tenant(api, "acme", name="Acme")
    assert api.call("POST", "/account", account_for(smtp_server)) == (200, {"ok": True})
    return key


# -- delete-messages ----------------------------------------------------------------------------


@pytest.mark.usefixtures("acme")
def test_deleting_waiting_messages_cancels_them(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a pending message, a scheduled one, and one to keep
    assert (
        add(api, message("pending"), message("scheduled", deferred_ts=LATER), message("keep"))[0]
        == 200
    )
    statuses = {i: r["status"] for i, r in records_by_id(api, "acme").items()}
    assert statuses == {"pending": "pending", "scheduled": "scheduled", "keep": "pending"}
    # When the first two are deleted, with an id that does not exist
    status, body = delete(api, ["pending", "scheduled", "ghost"])
    # Then two are removed and the unknown id is not found
    assert (status, body) == (
        200,
        {"ok": True, "removed": 2, "not_found": ["ghost"], "unauthorized": []},
    )
    assert message_ids(api, "acme") == ["keep"]
    # and when the senders run, only the kept message is delivered: the others are cancelled
    sender.drain()
    smtp_server.handler.wait_for(1)
    assert delivered_ids(smtp_server) == ["keep"]
    assert records_by_id(api, "acme")["keep"]["status"] == "sent"
    assert message_ids(api, "acme") == ["keep"]


@pytest.mark.usefixtures("acme")
def test_a_deleted_id_may_be_submitted_again_and_is_sent_once(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a pending message deleted before any sender ran
    add(api, message("again", subject="First"))
    assert delete(api, ["again"])[1]["removed"] == 1
    # When the same id is submitted again
    assert add(api, message("again", subject="Second")) == (
        200,
        {"ok": True, "queued": 1, "rejected": []},
    )
    sender.drain()
    # Then only the new one is delivered, once (the reference of the deleted one is dropped)
    [received] = smtp_server.handler.wait_for(1)
    sender.drain()
    assert len(smtp_server.received) == 1
    assert received.message["Subject"] == "Second"


@pytest.mark.usefixtures("acme")
def test_a_message_a_sender_is_delivering_is_not_deleted(api: ApiClient) -> None:
    # Given a message a sender has claimed and is delivering (live lease)
    add(api, message("busy"), message("idle"))
    claim_for_sending("acme", "busy")
    assert records_by_id(api, "acme")["busy"]["status"] == "sending"
    # When both are deleted
    status, body = delete(api, ["busy", "idle"])
    # Then the one being sent is reported unauthorized and stays; the other is removed
    assert (status, body) == (
        200,
        {"ok": True, "removed": 1, "not_found": [], "unauthorized": ["busy"]},
    )
    records = records_by_id(api, "acme")
    assert list(records) == ["busy"]
    assert records["busy"]["status"] == "sending"


@pytest.mark.usefixtures("acme")
def test_a_message_whose_sender_lease_expired_may_be_deleted(api: ApiClient) -> None:
    # Given a message claimed by a sender whose lease has run out (the sender died)
    add(api, message("stale"))
    claim_for_sending("acme", "stale", lease_seconds=-5)
    # When it is deleted / Then it is removed
    assert delete(api, ["stale"]) == (
        200,
        {"ok": True, "removed": 1, "not_found": [], "unauthorized": []},
    )
    assert message_ids(api, "acme") == []


def test_delete_messages_by_tenant_token_and_by_admin(
    api: ApiClient, acme: str, smtp_server: SmtpServer
) -> None:
    # Given acme's message "m1" and globex's "m1" and "g2"
    api.call("POST", "/account", account_for(smtp_server, tenant_id="globex"))
    add(api, message("m1"), message("m1", tenant_id="globex"), message("g2", tenant_id="globex"))
    # When acme's key deletes without naming a tenant / Then its own message is removed
    assert delete(api, ["m1", "g2"], query="", token=acme) == (
        200,
        {"ok": True, "removed": 1, "not_found": ["g2"], "unauthorized": []},
    )
    assert message_ids(api, "acme") == []
    assert sorted(message_ids(api, "globex")) == ["g2", "m1"]
    # When the admin names globex / Then globex's
    assert delete(api, ["m1"], query="tenant_id=globex") == (
        200,
        {"ok": True, "removed": 1, "not_found": [], "unauthorized": []},
    )
    assert message_ids(api, "globex") == ["g2"]
    # When the admin names no tenant / Then 422 naming tenant_id, nothing removed
    status, body = delete(api, ["g2"], query="")
    assert status == 422
    assert [item["loc"] for item in body["detail"]] == [["query", "tenant_id"]]
    assert message_ids(api, "globex") == ["g2"]


@pytest.mark.usefixtures("acme")
def test_deleting_no_ids(api: ApiClient) -> None:
    add(api, message("m1"))
    assert delete(api, []) == (
        200,
        {"ok": True, "removed": 0, "not_found": [], "unauthorized": []},
    )
    assert message_ids(api, "acme") == ["m1"]


@pytest.mark.usefixtures("acme")
def test_an_invalid_delete_body_is_a_422(api: ApiClient) -> None:
    add(api, message("m1"))
    for body in ({"ids": "m1"}, {"ids": [1, {"x": 2}]}, {"ids": ["x" * 256]}):
        status, answer = api.call("POST", "/commands/delete-messages", body, query="tenant_id=acme")
        assert status == 422, body
        assert isinstance(answer["detail"], list)
    assert message_ids(api, "acme") == ["m1"]


# -- cleanup-messages ---------------------------------------------------------------------------


@pytest.fixture
def finished(api: ApiClient, acme: str, sender: SenderDriver, smtp_server: SmtpServer) -> None:
    """Given acme with a sent message "sent", a failed one "failed" (unknown account, recorded
    with its error event) and a waiting one "waiting"."""
    status, body = add(api, message("sent"), message("failed", account_id="nope"))
    assert status == 200
    assert body["queued"] == 1
    sender.drain()
    smtp_server.handler.wait_for(1)
    add(api, message("waiting", deferred_ts=LATER))
    statuses = {i: r["status"] for i, r in records_by_id(api, "acme").items()}
    assert statuses == {"sent": "sent", "failed": "error", "waiting": "scheduled"}
    assert len(stored_events("acme", "sent")) == 1
    assert len(stored_events("acme", "failed")) == 1


@pytest.mark.usefixtures("finished")
def test_finished_messages_with_unreported_events_are_kept(api: ApiClient) -> None:
    # Given finished messages whose events no delivery report has carried yet
    before = records_by_id(api, "acme")
    # When cleaning up everything finished, however recent
    assert cleanup(api, {"older_than_seconds": 0}) == (200, {"ok": True, "removed": 0})
    # Then nothing is removed: the client has not heard of those outcomes
    assert records_by_id(api, "acme") == before


@pytest.mark.usefixtures("finished")
def test_finished_fully_reported_messages_are_removed_with_their_events(api: ApiClient) -> None:
    # Given the sent and the failed message fully reported
    assert mark_events_reported("acme", "sent") == 1
    assert mark_events_reported("acme", "failed") == 1
    # When cleaning up everything finished
    assert cleanup(api, {"older_than_seconds": 0}) == (200, {"ok": True, "removed": 2})
    # Then both are gone with their events; the waiting one stays
    assert message_ids(api, "acme") == ["waiting"]
    assert stored_events("acme", "sent") == []
    assert stored_events("acme", "failed") == []
    # and a second cleanup has nothing left to do
    assert cleanup(api, {"older_than_seconds": 0}) == (200, {"ok": True, "removed": 0})
    assert message_ids(api, "acme") == ["waiting"]


@pytest.mark.usefixtures("finished")
def test_a_message_with_one_unreported_event_is_kept(api: ApiClient) -> None:
    # Given a sent message with one reported event and one not yet reported
    mark_events_reported("acme", "sent")
    add_unreported_event("acme", "sent")
    mark_events_reported("acme", "failed")
    # When cleaning up / Then only the failed one (all reported) goes
    assert cleanup(api, {"older_than_seconds": 0}) == (200, {"ok": True, "removed": 1})
    assert sorted(message_ids(api, "acme")) == ["sent", "waiting"]
    assert len(stored_events("acme", "sent")) == 2


@pytest.mark.usefixtures("finished")
def test_only_messages_older_than_the_threshold_are_removed(api: ApiClient) -> None:
    # Given fully reported finished messages, finished just now
    mark_events_reported("acme", "sent")
    mark_events_reported("acme", "failed")
    # When cleaning up with the default retention (7 days), or an hour / Then they are kept
    assert cleanup(api) == (200, {"ok": True, "removed": 0})
    assert cleanup(api, {}) == (200, {"ok": True, "removed": 0})
    assert cleanup(api, {"older_than_seconds": 3600}) == (200, {"ok": True, "removed": 0})
    assert sorted(message_ids(api, "acme")) == ["failed", "sent", "waiting"]
    # When the threshold is passed / Then they go
    time.sleep(1.1)
    assert cleanup(api, {"older_than_seconds": 1}) == (200, {"ok": True, "removed": 2})
    assert message_ids(api, "acme") == ["waiting"]


@pytest.mark.usefixtures("finished")
def test_cleanup_by_tenant_token_and_the_admin_must_name_a_tenant(
    api: ApiClient, acme: str
) -> None:
    mark_events_reported("acme", "sent")
    # When the admin names no tenant / Then 422, nothing removed
    status, body = cleanup(api, {"older_than_seconds": 0}, query="")
    assert status == 422
    assert [item["loc"] for item in body["detail"]] == [["query", "tenant_id"]]
    assert sorted(message_ids(api, "acme")) == ["failed", "sent", "waiting"]
    # When acme's key names no tenant / Then its own tenant is cleaned
    status, body = api.call(
        "POST", "/commands/cleanup-messages", {"older_than_seconds": 0}, token=acme
    )
    assert (status, body) == (200, {"ok": True, "removed": 1})
    assert sorted(message_ids(api, "acme")) == ["failed", "waiting"]


@pytest.mark.usefixtures("acme")
def test_a_negative_threshold_is_a_422(api: ApiClient) -> None:
    status, body = cleanup(api, {"older_than_seconds": -1})
    assert status == 422
    assert body["detail"][0]["loc"][-1] == "older_than_seconds"


# -- suspend and activate -----------------------------------------------------------------------


def suspension(api: ApiClient, action: str, query: str, token: Any = ...) -> tuple[int, Any]:
    return api.call("POST", f"/commands/{action}", query=query, token=token)


def suspended(api: ApiClient, tenant_id: str = "acme") -> list[str]:
    return list(ok_json(api, "GET", f"/tenant/{tenant_id}")["suspended_batches"])


@pytest.fixture
def batches(api: ApiClient, acme: str, sender: SenderDriver, smtp_server: SmtpServer) -> None:
    """Given acme with a sent message of batch b1, then waiting messages: two of b1, one of
    b2, one without batch, and a failed one of b2."""
    add(api, message("old-b1", batch_code="b1"))
    sender.drain()
    smtp_server.handler.wait_for(1)
    status, body = add(
        api,
        message("b1-a", batch_code="b1", deferred_ts=LATER),
        message("b1-b", batch_code="b1", deferred_ts=LATER),
        message("b2-a", batch_code="b2", deferred_ts=LATER),
        message("none", deferred_ts=LATER),
        message("b2-failed", batch_code="b2", account_id="nope"),
    )
    assert status == 200
    assert body["queued"] == 4


@pytest.mark.usefixtures("batches")
def test_suspending_and_activating_batches(api: ApiClient) -> None:
    # When batch b1 is suspended
    # Then the answer names it, lists the suspended batches, counts b1's waiting messages
    assert suspension(api, "suspend", "tenant_id=acme&batch_code=b1") == (
        200,
        {
            "ok": True,
            "tenant_id": "acme",
            "batch_code": "b1",
            "suspended_batches": ["b1"],
            "pending_messages": 2,
        },
    )
    assert suspended(api) == ["b1"]
    # When b2 is suspended too / Then both are, b2 counts its one waiting message
    status, body = suspension(api, "suspend", "tenant_id=acme&batch_code=b2")
    assert status == 200
    assert (body["suspended_batches"], body["pending_messages"]) == (["b1", "b2"], 1)
    # When b1 is activated / Then only b2 stays suspended
    assert suspension(api, "activate", "tenant_id=acme&batch_code=b1") == (
        200,
        {
            "ok": True,
            "tenant_id": "acme",
            "batch_code": "b1",
            "suspended_batches": ["b2"],
            "pending_messages": 2,
        },
    )
    assert suspended(api) == ["b2"]
    # When everything is suspended / Then "*" replaces the batches, all waiting messages count
    assert suspension(api, "suspend", "tenant_id=acme") == (
        200,
        {
            "ok": True,
            "tenant_id": "acme",
            "batch_code": "*",
            "suspended_batches": ["*"],
            "pending_messages": 4,
        },
    )
    # When one batch is activated while all are suspended / Then 400, nothing changes
    status, body = suspension(api, "activate", "tenant_id=acme&batch_code=b2")
    assert status == 400
    assert isinstance(body["detail"], str)
    assert "b2" in body["detail"]
    assert suspended(api) == ["*"]
    # When everything is activated / Then nothing is suspended
    assert suspension(api, "activate", "tenant_id=acme") == (
        200,
        {
            "ok": True,
            "tenant_id": "acme",
            "batch_code": "*",
            "suspended_batches": [],
            "pending_messages": 4,
        },
    )
    assert suspended(api) == []


@pytest.mark.usefixtures("batches")
def test_an_explicit_star_means_every_batch(api: ApiClient) -> None:
    status, body = suspension(api, "suspend", "tenant_id=acme&batch_code=*")
    assert status == 200
    assert (body["batch_code"], body["suspended_batches"], body["pending_messages"]) == (
        "*",
        ["*"],
        4,
    )
    status, body = suspension(api, "activate", "tenant_id=acme&batch_code=*")
    assert status == 200
    assert body["suspended_batches"] == []


@pytest.mark.usefixtures("batches")
def test_activating_a_batch_that_is_not_suspended_changes_nothing(api: ApiClient) -> None:
    suspension(api, "suspend", "tenant_id=acme&batch_code=b1")
    assert suspension(api, "activate", "tenant_id=acme&batch_code=b9") == (
        200,
        {
            "ok": True,
            "tenant_id": "acme",
            "batch_code": "b9",
            "suspended_batches": ["b1"],
            "pending_messages": 0,
        },
    )
    assert suspended(api) == ["b1"]


@pytest.mark.usefixtures("batches")
def test_suspending_twice_is_the_same_as_once(api: ApiClient) -> None:
    first = suspension(api, "suspend", "tenant_id=acme&batch_code=b1")
    assert suspension(api, "suspend", "tenant_id=acme&batch_code=b1") == first
    assert suspended(api) == ["b1"]


@pytest.mark.usefixtures("batches")
def test_a_message_being_sent_counts_as_pending(api: ApiClient) -> None:
    # Given a further message of b1, claimed by a sender that is delivering it
    add(api, message("b1-now", batch_code="b1"))
    claim_for_sending("acme", "b1-now")
    assert records_by_id(api, "acme")["b1-now"]["status"] == "sending"
    # When b1 is suspended / Then it counts: it is not yet sent or failed
    status, body = suspension(api, "suspend", "tenant_id=acme&batch_code=b1")
    assert status == 200
    assert body["pending_messages"] == 3


@pytest.mark.usefixtures("acme")
def test_an_activation_while_a_sender_holds_the_message_still_releases_it(
    api: ApiClient,
    sender: SenderDriver,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailproxy.store.dynamo import Store

    # Given batch promo suspended and a message of it queued
    suspension(api, "suspend", "tenant_id=acme&batch_code=promo")
    add(api, message("promo-1", batch_code="promo"))
    # and a sender that read the tenant as suspended, but whose hold lands only after the
    # batch was activated (the activation found nothing held to release)
    original_hold = Store.hold

    def hold_after_activation(self: Store, *args: Any, **kwargs: Any) -> bool:
        monkeypatch.setattr(Store, "hold", original_hold)
        assert suspension(api, "activate", "tenant_id=acme&batch_code=promo")[0] == 200
        return original_hold(self, *args, **kwargs)

    monkeypatch.setattr(Store, "hold", hold_after_activation)
    # When the senders run
    sender.drain()
    # Then the message is delivered anyway, once
    smtp_server.handler.wait_for(1)
    sender.drain()
    assert delivered_ids(smtp_server) == ["promo-1"]
    assert records_by_id(api, "acme")["promo-1"]["status"] == "sent"


@pytest.mark.usefixtures("acme")
def test_suspension_of_an_unknown_tenant_is_a_404(api: ApiClient) -> None:
    for action in ("suspend", "activate"):
        for query in ("tenant_id=ghost", "tenant_id=ghost&batch_code=b1"):
            assert suspension(api, action, query) == (404, tenant_not_found("ghost"))
    assert [t["id"] for t in ok_json(api, "GET", "/tenants")["tenants"]] == ["acme"]


@pytest.mark.usefixtures("batches")
def test_a_tenant_token_suspends_its_own_tenant_and_the_admin_must_name_one(
    api: ApiClient, acme: str
) -> None:
    # When acme's key suspends without naming a tenant / Then acme is suspended
    status, body = suspension(api, "suspend", "batch_code=b2", token=acme)
    assert status == 200
    assert (body["tenant_id"], body["suspended_batches"], body["pending_messages"]) == (
        "acme",
        ["b2"],
        1,
    )
    assert suspended(api) == ["b2"]
    # When the admin names no tenant / Then 422 naming tenant_id, nothing changes
    for action in ("suspend", "activate"):
        status, body = suspension(api, action, "")
        assert status == 422
        assert [item["loc"] for item in body["detail"]] == [["query", "tenant_id"]]
    assert suspended(api) == ["b2"]


@pytest.mark.usefixtures("acme")
def test_a_batch_code_longer_than_64_characters_is_a_422(api: ApiClient) -> None:
    status, _ = suspension(api, "suspend", "tenant_id=acme&batch_code=" + "x" * 65)
    assert status == 422
    assert suspended(api) == []


@pytest.mark.usefixtures("batches")
def test_suspension_survives_other_tenant_changes(api: ApiClient) -> None:
    # Given a suspended batch / When the tenant is updated and replaced
    suspension(api, "suspend", "tenant_id=acme&batch_code=b1")
    api.call("PUT", "/tenant/acme", {"name": "Acme Corp"})
    api.call("POST", "/tenant", {"id": "acme", "name": "Acme again"})
    # Then the batch is still suspended
    assert suspended(api) == ["b1"]


@pytest.mark.usefixtures("batches")
@pytest.mark.parametrize("action", ["suspend", "activate"])
def test_an_empty_batch_code_means_every_batch(api: ApiClient, action: str) -> None:
    # Given everything suspended when activating (nothing suspended when suspending)
    if action == "activate":
        suspension(api, "suspend", "tenant_id=acme")
    # When the batch_code is given empty
    status, body = suspension(api, action, "tenant_id=acme&batch_code=")
    # Then it acts on every batch, as without batch_code, and says so consistently
    assert status == 200, body
    expected = ["*"] if action == "suspend" else []
    assert body["batch_code"] == "*"
    assert body["suspended_batches"] == expected
    assert body["pending_messages"] == 4
    assert suspended(api) == expected
