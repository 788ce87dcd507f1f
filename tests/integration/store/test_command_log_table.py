"""The command log's table on moto: records spread over days and shards come back as one
ordered log, by tenant through the sparse index, and a taken id is refused."""

from __future__ import annotations

from typing import Any

from mailproxy.domain.command_log import CommandQuery, CommandRecord, command_id
from mailproxy.store.command_log import CommandLogRecords

T0 = 1_900_000_000.0
DAY = 86_400
RETENTION = 7 * DAY


def _record(ts: float, salt: int, endpoint: str, tenant: str | None) -> CommandRecord:
    return CommandRecord(
        id=command_id(ts, salt),
        command_ts=int(ts),
        endpoint=endpoint,
        tenant_id=tenant,
        payload={"endpoint": endpoint, "n": salt},
        response_status=200,
        expires_at=int(ts + RETENTION),
    )


def _log(aws: Any) -> CommandLogRecords:
    return CommandLogRecords(aws.table("commands"))


def test_records_over_days_and_shards_list_newest_first_and_export_oldest_first(
    aws: Any,
) -> None:
    # Given 24 calls over three days, each salt landing on its own shard
    log = _log(aws)
    written = [
        _record(T0 - DAY * 2 + n * 10_000, n, f"POST /x/{n}", "acme" if n % 2 else None)
        for n in range(24)
    ]
    for record in written:
        assert log.put_command(record)
    now = T0 + DAY
    # When the whole log is listed and exported
    newest = log.commands(
        CommandQuery(limit=None), now=now, retention_seconds=RETENTION, newest_first=True
    )
    oldest = log.commands(
        CommandQuery(limit=None), now=now, retention_seconds=RETENTION, newest_first=False
    )
    # Then every record comes back once, in id order either way, payload as written
    assert [r.id for r in newest] == sorted((r.id for r in written), reverse=True)
    assert [r.id for r in oldest] == sorted(r.id for r in written)
    assert oldest[0] == written[0]


def test_a_limit_a_time_range_and_an_endpoint_filter_narrow_the_listing(aws: Any) -> None:
    log = _log(aws)
    for n in range(10):
        log.put_command(_record(T0 + n, n, "POST /account" if n < 5 else "POST /tenant", "acme"))
    query = CommandQuery(since_ts=T0 + 2, until_ts=T0 + 7, endpoint_filter="account", limit=2)
    found = log.commands(query, now=T0 + 60, retention_seconds=RETENTION, newest_first=True)
    assert [r.command_ts for r in found] == [int(T0) + 4, int(T0) + 3]


def test_a_tenant_s_records_come_from_its_index_and_no_one_else_s(aws: Any) -> None:
    log = _log(aws)
    for n, tenant in enumerate(["acme", "beta", None, "acme"]):
        log.put_command(_record(T0 + n, n, "POST /account", tenant))
    found = log.commands(
        CommandQuery(tenant_id="acme"), now=T0 + 60, retention_seconds=RETENTION, newest_first=True
    )
    assert [r.command_ts for r in found] == [int(T0) + 3, int(T0)]


def test_a_taken_id_is_refused_and_the_first_record_kept(aws: Any) -> None:
    log = _log(aws)
    first = _record(T0, 1, "POST /account", "acme")
    assert log.put_command(first)
    assert not log.put_command(_record(T0, 1, "DELETE /account/a", "acme"))
    [kept] = log.commands(
        CommandQuery(), now=T0 + 1, retention_seconds=RETENTION, newest_first=True
    )
    assert kept == first


def test_what_is_older_than_the_retention_is_not_listed_without_a_since(aws: Any) -> None:
    log = _log(aws)
    log.put_command(_record(T0 - RETENTION - DAY, 1, "POST /old", None))
    log.put_command(_record(T0, 2, "POST /new", None))
    found = log.commands(CommandQuery(), now=T0, retention_seconds=RETENTION, newest_first=True)
    assert [r.endpoint for r in found] == ["POST /new"]


def test_bounds_far_outside_the_retention_read_only_the_days_that_can_hold_a_record(
    aws: Any,
) -> None:
    # Given a record of a day ago
    log = _log(aws)
    log.put_command(_record(T0 - DAY, 1, "POST /kept", None))
    # When a listing and an export ask from 1970 (and before) to centuries ahead
    query = CommandQuery(since_ts=-2741, until_ts=T0 * 1000, limit=None)
    for newest_first in (True, False):
        found = log.commands(query, now=T0, retention_seconds=RETENTION, newest_first=newest_first)
        # Then the record, read from a few days rather than one query per day since 1970
        assert [r.endpoint for r in found] == ["POST /kept"]
