"""Recording, listing and exporting the command log, against an in-memory log."""

from __future__ import annotations

import itertools

import pytest

from mailproxy.domain.command_log import MASK, CommandQuery
from mailproxy.domain.errors import StorageFailure
from mailproxy.service.command_log import (
    COMMAND_RETENTION_SECONDS,
    export_commands,
    list_commands,
    record_command,
)
from tests.support.fakes import FakeClock, FakeCommandLog


def record(log: FakeCommandLog, clock: FakeClock, endpoint: str, tenant: str | None = "acme"):
    salts = itertools.count()
    return record_command(
        log,
        clock,
        lambda: next(salts),
        endpoint=endpoint,
        tenant_id=tenant,
        payload={"id": "smtp-main", "password": "hunter2"},
        response_status=200,
    )


def test_a_call_is_recorded_masked_with_its_time_status_and_expiry() -> None:
    # Given an empty log
    log, clock = FakeCommandLog(), FakeClock()
    # When an account upsert is recorded
    kept = record(log, clock, "POST /account")
    # Then it is in the log, its password masked, kept for the retention period
    assert kept is not None
    assert list(log.records.values()) == [kept]
    assert kept.payload == {"id": "smtp-main", "password": MASK}
    assert (kept.command_ts, kept.response_status, kept.tenant_id) == (int(clock.now), 200, "acme")
    assert kept.expires_at == int(clock.now + COMMAND_RETENTION_SECONDS)


def test_a_taken_id_is_salted_again() -> None:
    # Given a log where the first id the call draws is taken
    log, clock = FakeCommandLog(), FakeClock()
    first = record(log, clock, "POST /account")
    # When a second call in the same millisecond draws that salt first
    second = record(log, clock, "POST /tenant")
    # Then it is recorded under another id
    assert first is not None
    assert second is not None
    assert first.id != second.id
    assert len(log.records) == 2


def test_a_failed_write_is_the_caller_s_to_handle() -> None:
    log, clock = FakeCommandLog(failures=[StorageFailure("DynamoDB error")]), FakeClock()
    with pytest.raises(StorageFailure):
        record(log, clock, "POST /account")
    assert log.records == {}


def test_the_listing_is_newest_first_filtered_and_limited() -> None:
    # Given three calls a second apart, by two tenants
    log, clock = FakeCommandLog(), FakeClock()
    for endpoint, tenant in (
        ("POST /account", "acme"),
        ("POST /tenant", None),
        ("POST /account", "beta"),
    ):
        record(log, clock, endpoint, tenant)
        clock.advance(1)
    # When the admin lists them
    everything = list_commands(log, clock, CommandQuery())
    accounts = list_commands(log, clock, CommandQuery(endpoint_filter="account", limit=1))
    acme = list_commands(log, clock, CommandQuery(tenant_id="acme"))
    # Then the newest comes first, and each filter keeps what it names
    assert [c.endpoint for c in everything] == ["POST /account", "POST /tenant", "POST /account"]
    assert [c.tenant_id for c in everything] == ["beta", None, "acme"]
    assert [c.tenant_id for c in accounts] == ["beta"]
    assert [c.tenant_id for c in acme] == ["acme"]


def test_the_export_is_oldest_first_and_whole() -> None:
    log, clock = FakeCommandLog(), FakeClock()
    for n in range(150):
        record(log, clock, f"POST /commands/add-messages#{n}")
        clock.advance(1)
    exported = export_commands(log, clock)
    assert len(exported) == 150
    assert exported[0].endpoint.endswith("#0")
    assert exported[-1].endpoint.endswith("#149")
