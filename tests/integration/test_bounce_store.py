"""The bounce reader's store adapters on moto, over messages the real sender delivered to a
real SMTP server: finding a message by X-Genro-Mail-ID across tenants, by Message-ID (the
default hash and a client's own), by recipient among the recent ones; and the bounce event
written once, unreported, with its dedupe key."""

from __future__ import annotations

import time
from typing import Any

from mailproxy import runtime
from mailproxy.delivery.mime import message_id_digest
from mailproxy.domain.bounces import BounceType, FailedRecipient, bounce_event, bounce_key
from mailproxy.store.bounces import StoredMessageLookup
from tests.support.api_calls import add_all
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.tenants import create_tenant, stored_events

WEEK = 7 * 24 * 3600


def sent_in_two_tenants(api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer) -> None:
    """acme and globex each sent a message "42"; globex's with its own Message-ID."""
    for tenant in ("acme", "globex"):
        create_tenant(api, tenant)
        assert api.call("POST", "/account", account_for(smtp_server, tenant_id=tenant))[0] == 200
    add_all(api, message("42", to=["Someone <One@Example.test>"], cc=["cc@example.test"]))
    add_all(
        api,
        message(
            "42",
            tenant_id="globex",
            to=["two@example.test"],
            message_id="<chosen.42@globex.test>",
        ),
    )
    add_all(api, message("7", to=["one@example.test"]))
    sender.drain()


def test_by_mail_id_finds_the_message_in_every_tenant_with_what_checks_it(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given two tenants with a message "42" each, sent
    sent_in_two_tenants(api, sender, smtp_server)
    lookup = StoredMessageLookup(runtime.store(), since=time.time() - WEEK)
    # When the reader looks for "42"
    found = {s.tenant_id: s for s in lookup.by_mail_id("42")}
    # Then both are found, with recipients and Message-ID as sent
    assert set(found) == {"acme", "globex"}
    assert found["acme"].recipients == ("one@example.test", "cc@example.test")
    assert found["acme"].message_id_header == f"<{message_id_digest('acme', '42')}@acme.test>"
    assert found["globex"].message_id_header == "<chosen.42@globex.test>"
    assert found["acme"].sent_ts is not None
    assert lookup.by_mail_id("nope") == []


def test_by_message_id_checks_the_hash_and_reads_a_clients_own(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    sent_in_two_tenants(api, sender, smtp_server)
    lookup = StoredMessageLookup(runtime.store(), since=time.time() - WEEK)
    default = f"<{message_id_digest('acme', '7')}@acme.test>"
    assert [(s.tenant_id, s.id) for s in lookup.by_message_id(default)] == [("acme", "7")]
    own = lookup.by_message_id("<chosen.42@globex.test>")
    assert [(s.tenant_id, s.id) for s in own] == [("globex", "42")]
    assert lookup.by_message_id("<unknown@nowhere.test>") == []


def test_by_recipient_looks_among_recent_messages_only(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    sent_in_two_tenants(api, sender, smtp_server)
    lookup = StoredMessageLookup(runtime.store(), since=time.time() - WEEK)
    found = {(s.tenant_id, s.id) for s in lookup.by_recipient("ONE@example.test", 0.0)}
    assert found == {("acme", "42"), ("acme", "7")}
    # A window that starts after the sends finds nothing
    later = StoredMessageLookup(runtime.store(), since=time.time() + 60)
    assert later.by_recipient("one@example.test", 0.0) == []


def test_a_bounce_is_recorded_once_unreported(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    sent_in_two_tenants(api, sender, smtp_server)
    store = runtime.store()
    target = next(s for s in store.sent_messages([("acme", "42")]))
    failure = FailedRecipient("one@example.test", BounceType.HARD, "5.1.1", "no such user")
    key = bounce_key(failure.recipient, failure.code)
    # When the same failure is recorded twice (a second notification, a later time)
    assert store.record_bounce(target, bounce_event("42", failure, time.time()), key)
    assert not store.record_bounce(target, bounce_event("42", failure, time.time() + 9), key)
    # Then one bounce event, unreported (the reporter's index holds it)
    bounces: list[Any] = [e for e in stored_events("acme", "42") if e.event_type == "bounce"]
    assert len(bounces) == 1
    assert bounces[0].unreported == "acme"
    assert bounces[0].reported_ts is None
    assert bounces[0].metadata["bounce_code"] == "5.1.1"
    # And another code for the same recipient is another event
    other = FailedRecipient("one@example.test", BounceType.SOFT, "4.2.2", "mailbox full")
    assert store.record_bounce(
        target, bounce_event("42", other, time.time()), bounce_key(other.recipient, other.code)
    )
    # And a message that is gone takes no bounce
    gone = next(s for s in store.sent_messages([("globex", "42")]))
    gone = type(gone)("globex", "missing")
    assert not store.record_bounce(gone, bounce_event("missing", failure, time.time()), key)
