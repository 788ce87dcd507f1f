"""GET /metrics as Prometheus scrapes it: the contract's names and labels, counted from what
the senders did."""

from __future__ import annotations

import re
from typing import Any

from infra.local.events import LambdaContext, http_event
from tests.conftest import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import RecordingHandler, SmtpServer


def scrape(api: ApiClient) -> tuple[dict[str, Any], str]:
    response = api.handler.lambda_handler(http_event("GET", "/metrics"), LambdaContext())
    return response, response["body"]


def sample(text: str, name: str, account: str) -> float | None:
    labels = f'tenant_id="acme",tenant_name="Acme",account_id="{account}",account_name="{account}"'
    pattern = rf"^{name}{{{labels}}} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_metrics_count_what_was_sent_failed_deferred_and_what_waits(
    api: ApiClient, sender: SenderDriver
) -> None:
    # Given tenant Acme with an account that delivers and one that refuses (550), and one
    # message held for later
    assert api.call("POST", "/tenant", {"id": "acme", "name": "Acme"})[0] == 200
    refusing = SmtpServer(RecordingHandler(data_reply="550 5.7.1 Rejected"))
    greylisting = SmtpServer(RecordingHandler(data_reply="451 4.7.1 Try later"))
    with SmtpServer() as good, refusing, greylisting:
        for name, server in (("good", good), ("bad", refusing), ("slow", greylisting)):
            assert api.call("POST", "/account", account_for(server, id=name))[0] == 200
        batch = [
            message("a", account_id="good"),
            message("b", account_id="good"),
            message("c", account_id="bad"),
            message("d", account_id="slow"),
            message("e", account_id="good", deferred_ts=2_000_000_000),
        ]
        assert api.call("POST", "/commands/add-messages", {"messages": batch})[0] == 200
        sender.drain()
    # When Prometheus scrapes, without a token
    response, text = scrape(api)
    # Then the contract's names and labels carry the counts
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/plain; version=0.0.4")
    assert sample(text, "gmp_sent_total", "good") == 2
    assert sample(text, "gmp_errors_total", "bad") == 1
    assert sample(text, "gmp_deferred_total", "slow") == 1
    # and what is still on its way: the greylisted one and the one scheduled for later
    assert sample(text, "gmp_pending_messages", "good") == 1
    assert sample(text, "gmp_pending_messages", "slow") == 1
    assert sample(text, "gmp_pending_messages", "bad") == 0
    assert "# TYPE gmp_rate_limited_total counter" in text
    assert "# TYPE gmp_pending_messages gauge" in text


def test_a_cancelled_message_leaves_the_pending_gauge(api: ApiClient) -> None:
    assert api.call("POST", "/tenant", {"id": "acme", "name": "Acme"})[0] == 200
    with SmtpServer() as server:
        assert api.call("POST", "/account", account_for(server, id="good"))[0] == 200
    later = message("later", account_id="good", deferred_ts=2_000_000_000)
    assert api.call("POST", "/commands/add-messages", {"messages": [later]})[0] == 200
    assert sample(scrape(api)[1], "gmp_pending_messages", "good") == 1
    api.call("POST", "/commands/delete-messages", {"ids": ["later"]}, query="tenant_id=acme")
    assert sample(scrape(api)[1], "gmp_pending_messages", "good") == 0
