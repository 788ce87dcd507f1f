"""The command log's use cases: record a state-changing call, list and export the log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailproxy.domain.clock import Clock
from mailproxy.domain.command_log import (
    CommandQuery,
    CommandRecord,
    command_id,
    masked,
    recorded_at,
)
from mailproxy.domain.reporting import RETENTION_SECONDS
from mailproxy.service.ports import CommandLog

# Kept as long as the messages it speaks of (DynamoDB's TTL removes it after).
COMMAND_RETENTION_SECONDS = RETENTION_SECONDS
# Ids are time plus a random salt: a collision is rare, and a second one rarer still.
_ID_ATTEMPTS = 5


def record_command(
    log: CommandLog,
    clock: Clock,
    salt: Callable[[], int],
    *,
    endpoint: str,
    tenant_id: str | None,
    payload: Any,
    response_status: int,
) -> CommandRecord | None:
    """Records the call with its secrets masked; the record, or None when every id it drew
    was taken. StorageFailure when DynamoDB fails the write (the caller decides what that
    means for the call: it must not fail it)."""
    now = clock()
    body = masked(payload) if isinstance(payload, dict) else {"body": masked(payload)}
    for _ in range(_ID_ATTEMPTS):
        record = CommandRecord(
            id=command_id(now, salt()),
            command_ts=int(now),
            endpoint=endpoint,
            tenant_id=tenant_id,
            payload=body,
            response_status=response_status,
            expires_at=int(now + COMMAND_RETENTION_SECONDS),
        )
        if log.put_command(record):
            return record
    return None


def list_commands(log: CommandLog, clock: Clock, query: CommandQuery) -> list[CommandRecord]:
    """Newest first, up to the query's limit."""
    return log.commands(
        query, now=clock(), retention_seconds=COMMAND_RETENTION_SECONDS, newest_first=True
    )


def export_commands(
    log: CommandLog,
    clock: Clock,
    *,
    tenant_id: str | None = None,
    since_ts: float | None = None,
    until_ts: float | None = None,
) -> list[CommandRecord]:
    """Oldest first and all of them: the order a replay sends them in."""
    query = CommandQuery(tenant_id=tenant_id, since_ts=since_ts, until_ts=until_ts, limit=None)
    return log.commands(
        query, now=clock(), retention_seconds=COMMAND_RETENTION_SECONDS, newest_first=False
    )


def get_command(log: CommandLog, clock: Clock, record_id: int) -> CommandRecord | None:
    """One command by its id (0.7's command_log/get): read from the second its id names."""
    second = recorded_at(record_id)
    query = CommandQuery(since_ts=second, until_ts=second, limit=None)
    found = log.commands(
        query, now=clock(), retention_seconds=COMMAND_RETENTION_SECONDS, newest_first=True
    )
    return next((record for record in found if record.id == record_id), None)
