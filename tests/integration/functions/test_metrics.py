"""GET /metrics as Prometheus scrapes it: the contract's names and labels, counted from what
the senders did."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from infra.local.events import LambdaContext, http_event
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import RecordingHandler, SmtpServer


def scrape(api: ApiClient) -> tuple[dict[str, Any], str]:
    response = api.handler.lambda_handler(http_event("GET", "/metrics"), LambdaContext())
    return response, response["body"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as Prometheus reads it: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(text: str, name: str, account: str) -> float | None:
    labels = {
        "tenant_id": "acme",
        "tenant_name": "Acme",
        "account_id": account,
        "account_name": account,
    }
    return samples(text).get((name, tuple(sorted(labels.items()))))


def page_sample(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


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


def test_the_architecture_page_names_and_alert_rules_read_the_same_counts(
    api: ApiClient, sender: SenderDriver
) -> None:
    # Given an account that delivered two messages and one that refused one
    assert api.call("POST", "/tenant", {"id": "acme", "name": "Acme"})[0] == 200
    refusing = SmtpServer(RecordingHandler(data_reply="550 5.7.1 Rejected"))
    with SmtpServer() as good, refusing:
        api.call("POST", "/account", account_for(good, id="smtp-main"))
        api.call("POST", "/account", account_for(refusing, id="bad"))
        batch = [
            message("a", account_id="smtp-main"),
            message("b", account_id="smtp-main"),
            message("c", account_id="bad"),
            message("later", account_id="smtp-main", deferred_ts=2_000_000_000),
        ]
        api.call("POST", "/commands/add-messages", {"messages": batch})
        sender.drain()
    text = scrape(api)[1]
    # Then the page's names count them, by account_id and tenant_id
    labels = {"account_id": "smtp-main", "tenant_id": "acme"}
    assert page_sample(text, "mail_sent_total", **labels) == 2
    assert page_sample(text, "mail_error_total", account_id="bad", tenant_id="acme") == 1
    assert page_sample(text, "mail_deferred_total", **labels) == 0
    assert page_sample(text, "mail_rate_limited_total", **labels) == 0
    # and mail_pending, unlabelled, is what its alert rule `mail_pending > 100` reads
    assert page_sample(text, "mail_pending") == 1


def test_every_series_is_there_at_zero_before_any_traffic(api: ApiClient) -> None:
    # Given a fresh proxy / Then both pending gauges are there, at 0
    text = scrape(api)[1]
    assert page_sample(text, "mail_pending") == 0
    default = {"tenant_id": "default", "tenant_name": "default"}
    default |= {"account_id": "default", "account_name": "default"}
    for name in ("gmp_pending_messages", "gmp_sent_total", "gmp_rate_limited_total"):
        assert page_sample(text, name, **default) == 0  # as genro-mail-proxy shows them
    assert page_sample(text, "mail_sent_total", account_id="default", tenant_id="default") == 0
    # When an account exists, before it sent anything / Then its series are there, at 0
    assert api.call("POST", "/tenant", {"id": "acme", "name": "Acme"})[0] == 200
    with SmtpServer() as server:
        api.call("POST", "/account", account_for(server, id="quiet"))
    text = scrape(api)[1]
    assert sample(text, "gmp_pending_messages", "quiet") == 0
    assert sample(text, "gmp_sent_total", "quiet") == 0
    assert page_sample(text, "mail_error_total", account_id="quiet", tenant_id="acme") == 0
