"""bounce_return_path: the envelope sender (MAIL FROM) of outgoing mail, so bounces reach
the bounce mailbox, unless the message gives its own return_path (the client's choice wins).
The real sender handler, moto, and a real SMTP server that records MAIL FROM."""

from __future__ import annotations

from mailproxy import runtime
from mailproxy.domain.instance import InstanceChange
from mailproxy.service.instance import update_instance
from tests.support.api_calls import add_all
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.tenants import create_tenant

RETURN_PATH = "bounces@proxy.example"


def set_return_path(value: str | None) -> None:
    change = InstanceChange.model_validate({"bounce_return_path": value})
    update_instance(change, runtime.store(), runtime.secret_box(), runtime.clock)


def mail_from_by_subject(smtp_server: SmtpServer) -> dict[str, str]:
    return {r.message["Subject"]: r.mail_from for r in smtp_server.received}


def test_the_instance_return_path_is_the_envelope_sender_unless_the_message_names_one(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given an instance with a bounce_return_path
    create_tenant(api, "acme")
    assert api.call("POST", "/account", account_for(smtp_server))[0] == 200
    set_return_path(RETURN_PATH)
    # When a message without return_path and one with its own are sent
    add_all(api, message("plain"), message("own", return_path="client-bounces@acme.test"))
    sender.drain()
    # Then the first leaves with the instance's, the second with its own; From is untouched
    smtp_server.handler.wait_for(2, timeout=10)
    assert mail_from_by_subject(smtp_server) == {
        "Subject plain": RETURN_PATH,
        "Subject own": "client-bounces@acme.test",
    }
    assert {r.message["From"] for r in smtp_server.received} == {"app@acme.test"}


def test_without_a_return_path_the_envelope_sender_is_the_from(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    create_tenant(api, "acme")
    assert api.call("POST", "/account", account_for(smtp_server))[0] == 200
    add_all(api, message("plain"))
    sender.drain()
    smtp_server.handler.wait_for(1, timeout=10)
    assert mail_from_by_subject(smtp_server) == {"Subject plain": "app@acme.test"}
