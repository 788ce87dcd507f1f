"""mailproxy.timeouts: one place for the network timeouts, and the callers take them from it."""

from __future__ import annotations

import dataclasses

import pytest

from mailproxy import aws, timeouts
from mailproxy.delivery.attachments import FetchContext
from mailproxy.delivery.smtp_pool import SmtpPool
from mailproxy.service.reporting import ReportingContext

SECONDS = {name: value for name, value in vars(timeouts).items() if name.endswith("_SECONDS")}


@pytest.mark.parametrize("name", sorted(SECONDS))
def test_every_timeout_is_a_positive_number_of_seconds(name: str) -> None:
    assert isinstance(SECONDS[name], int | float)
    assert SECONDS[name] > 0


@pytest.mark.parametrize("whole", ["ATTACHMENT_FETCH_SECONDS", "REPORT_CALL_SECONDS"])
def test_an_http_connect_fits_in_the_call_it_starts(whole: str) -> None:
    # Given a whole-call bound / Then connecting alone cannot use more than all of it
    assert SECONDS[whole] >= timeouts.HTTP_CONNECT_SECONDS


def test_aws_clients_take_the_aws_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a region (no credentials are needed to build a client)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    # When a client is built (past the cache, so no other test's client is read)
    config = aws.client.__wrapped__("sqs").meta.config
    # Then it connects and reads within the AWS timeouts
    assert (config.connect_timeout, config.read_timeout) == (
        timeouts.AWS_CONNECT_SECONDS,
        timeouts.AWS_READ_SECONDS,
    )


def test_smtp_pool_takes_the_smtp_timeouts() -> None:
    pool = SmtpPool()
    assert (pool._connect_timeout, pool._send_timeout, pool._wait_timeout) == (
        timeouts.SMTP_CONNECT_SECONDS,
        timeouts.SMTP_SEND_SECONDS,
        timeouts.SMTP_WAIT_FOR_CONNECTION_SECONDS,
    )


def test_whole_call_bounds_are_the_contexts_defaults() -> None:
    # Given the contexts a sender's fetches and a reporter's run are made with
    fetch = {f.name: f.default for f in dataclasses.fields(FetchContext)}
    report = {f.name: f.default for f in dataclasses.fields(ReportingContext)}
    # Then, unless told otherwise, each call is bounded by the timeouts module's figure
    assert fetch["timeout_seconds"] == timeouts.ATTACHMENT_FETCH_SECONDS
    assert report["timeout_seconds"] == timeouts.REPORT_CALL_SECONDS
