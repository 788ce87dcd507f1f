"""The bounce reader's Lambda handler over moto and a real IMAP server (pymap): a message
the real sender delivered comes back as a DSN in the bounce mailbox; the handler records its
bounce event (unreported, for the reporter), moves the DSN out, and keeps to the poll
interval, the enabled flag and the run lease."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.events import LambdaContext, load_handler
from mailproxy import runtime
from mailproxy.domain.instance import InstanceChange
from mailproxy.service.instance import update_instance
from tests.support.api_calls import add_all
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.imap_server import PASSWORD, USER, ImapServer
from tests.support.smtp_servers import SmtpServer
from tests.support.tenants import create_tenant, stored_events

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bounces"
FOLDER = "Bounces"
# The Message-ID the fixture's returned headers carry: the client gave it.
HARD_MESSAGE_ID = "<9d1c27a0b4e54f7c8a1e2b3c4d5e6f70@acme.example>"


@pytest.fixture(scope="module")
def imap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    running = ImapServer(tmp_path_factory.mktemp("imap"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def trusted(imap: ImapServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler verifies certificates against the default CAs: here, the server's CA."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(imap.ca.cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))


def configure(imap: ImapServer, **fields: Any) -> None:
    change = InstanceChange.model_validate(
        {
            "bounce_enabled": True,
            "bounce_imap_host": "127.0.0.1",
            "bounce_imap_port": imap.tls_port,
            "bounce_imap_user": USER,
            "bounce_imap_password": PASSWORD,
            "bounce_imap_folder": FOLDER,
        }
        | fields
    )
    update_instance(change, runtime.store(), runtime.secret_box(), runtime.clock)


def invoke(event: dict[str, Any] | None = None) -> dict[str, Any]:
    handler = load_handler("bouncer")
    return dict(handler.lambda_handler(event or {}, LambdaContext()))


def bounces(tenant_id: str, mail_id: str) -> list[Any]:
    return [e for e in stored_events(tenant_id, mail_id) if e.event_type == "bounce"]


def test_a_dsn_becomes_a_bounce_event_and_leaves_the_folder(
    api: ApiClient,
    sender: SenderDriver,
    smtp_server: SmtpServer,
    imap: ImapServer,
    trusted: None,
) -> None:
    # Given a message acme sent, whose DSN is in the bounce mailbox
    create_tenant(api, "acme")
    assert api.call("POST", "/account", account_for(smtp_server))[0] == 200
    add_all(
        api,
        message("msg-hard-1", to=["nobody@customer.example"], message_id=HARD_MESSAGE_ID),
    )
    sender.drain()
    uid = imap.append(FOLDER, (FIXTURES / "postfix_hard_511.eml").read_bytes())
    configure(imap)
    # When the tick comes
    summary = invoke()
    # Then one hard bounce is recorded, unreported, and the DSN is out of the folder
    assert summary["state"] == "ran"
    assert summary["hard"] == 1
    recorded = bounces("acme", "msg-hard-1")
    assert len(recorded) == 1
    assert recorded[0].metadata["bounce_type"] == "hard"
    assert recorded[0].unreported == "acme"
    assert uid not in imap.uids(FOLDER)
    # And the next tick, within the poll interval, does not read the mailbox
    assert invoke()["state"] == "not_due"
    # And a reload does, finding nothing new
    again = invoke({"reload": True})
    assert again["state"] == "ran"
    assert again["read"] == 0


def test_disabled_or_busy_reads_nothing(aws: Any, imap: ImapServer, trusted: None) -> None:
    assert invoke()["state"] == "disabled"
    configure(imap)
    store = runtime.store()
    assert store.take_bounce_lease("someone-else", time.time(), time.time() + 300)
    assert invoke({"reload": True})["state"] == "busy"


def test_starttls_when_ssl_is_off_and_a_failing_mailbox_is_reported(
    aws: Any, imap: ImapServer, trusted: None
) -> None:
    # Given STARTTLS settings (bounce_imap_ssl false) on the STARTTLS port: it runs
    configure(imap, bounce_imap_ssl=False, bounce_imap_port=imap.starttls_port)
    assert invoke({"reload": True})["state"] == "ran"
    # And a wrong password: the run fails, the invocation does not
    configure(imap, bounce_imap_password="wrong")
    summary = invoke({"reload": True})
    assert summary["state"] == "ran"
    assert "error" in summary
