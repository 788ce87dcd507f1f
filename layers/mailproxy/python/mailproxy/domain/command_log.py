"""The command log: every state-changing API call, as it is recorded and read back
(SPEC.md's GET /command-log and /command-log/export)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

# What the log keeps of a secret: that one was given, never what it was.
MASK = "***"
# Keys whose values are secrets wherever they appear in a payload (accounts, tenants'
# client_auth, instance settings); matched case-insensitively.
_SECRET_KEYS = frozenset({"password", "token", "api_key", "api_token", "secret", "authorization"})
_SECRET_SUFFIXES = ("_password", "_token", "_secret")
# An attachment's inline bytes are neither useful to an audit nor small.
_CONTENT_KEYS = frozenset({"content"})
_INLINE = "base64:"

LOGGED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_LIMIT = 100
# The log's partition is the day; each day is spread over this many partition keys so that a
# burst of calls is not held to one key's write rate (about 1,000 a second).
SHARDS = 4
# Ids are the call's time in microseconds-ish: milliseconds times 1,000 plus a salt, so they
# sort by time, stay below 2**53 (exact in a JavaScript client) and rarely collide.
_SALTS = 1000


def is_logged(method: str) -> bool:
    return method.upper() in LOGGED_METHODS


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SECRET_KEYS or lowered.endswith(_SECRET_SUFFIXES)


def masked(payload: Any, *, in_attachments: bool = False) -> Any:
    """The payload with every secret and every attachment's content replaced by MASK
    (a null stays null: it says the field was cleared, not what it held)."""
    if isinstance(payload, dict):
        result: dict[str, Any] = {}
        for key, value in payload.items():
            name = str(key)
            if value is not None and (
                _is_secret(name) or (in_attachments and name.lower() in _CONTENT_KEYS)
            ):
                result[name] = MASK
            elif in_attachments and isinstance(value, str) and value.startswith(_INLINE):
                # An attachment given inline as its storage_path: its bytes, masked too.
                result[name] = _INLINE + MASK
            else:
                result[name] = masked(value, in_attachments=name.lower() == "attachments")
        return result
    if isinstance(payload, list):
        return [masked(item, in_attachments=in_attachments) for item in payload]
    return payload


def command_id(now: float, salt: int) -> int:
    return int(now * 1000) * _SALTS + salt % _SALTS


def first_id_at(ts: float) -> int:
    """The smallest id a command recorded at or after `ts` (epoch seconds) can have."""
    return int(ts * 1000) * _SALTS


def last_id_at(ts: float) -> int:
    """The largest id a command recorded at or before `ts` (epoch seconds) can have."""
    return (int(ts * 1000) + 999) * _SALTS + _SALTS - 1


def recorded_at(record_id: int) -> int:
    """The second (epoch) a command was recorded in, read off its id."""
    return record_id // _SALTS // 1000


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def partition_of(record_id: int) -> str:
    """Where a command lives: its day and its shard, both read off its id."""
    return f"{day_of(record_id / _SALTS / 1000)}#{record_id % SHARDS}"


def partitions_of_day(day: str) -> list[str]:
    return [f"{day}#{shard}" for shard in range(SHARDS)]


def days_between(since_ts: float, until_ts: float) -> list[str]:
    """The days from `until_ts` back to `since_ts`, newest first."""
    if until_ts < since_ts:
        return []
    day = datetime.fromtimestamp(until_ts, tz=UTC).date()
    first = datetime.fromtimestamp(since_ts, tz=UTC).date()
    days: list[str] = []
    while day >= first:
        days.append(day.isoformat())
        day -= timedelta(days=1)
    return days


@dataclass(frozen=True)
class CommandRecord:
    id: int
    command_ts: int
    endpoint: str
    tenant_id: str | None
    payload: dict[str, Any]
    response_status: int | None
    expires_at: int


@dataclass(frozen=True)
class CommandQuery:
    """GET /command-log's filters; `since_ts` and `until_ts` are inclusive epoch seconds."""

    tenant_id: str | None = None
    since_ts: float | None = None
    until_ts: float | None = None
    endpoint_filter: str | None = None
    limit: int | None = DEFAULT_LIMIT

    def admits(self, record: CommandRecord) -> bool:
        if self.tenant_id is not None and record.tenant_id != self.tenant_id:
            return False
        if self.since_ts is not None and record.command_ts < self.since_ts:
            return False
        if self.until_ts is not None and record.command_ts > self.until_ts:
            return False
        return not (self.endpoint_filter and self.endpoint_filter not in record.endpoint)


def endpoint_of(method: str, path: str, query: dict[str, str] | None = None) -> str:
    """`POST /commands/add-messages`, or `DELETE /account/a1?tenant_id=t1`: the query string
    is part of what a replay must send again."""
    text = f"{method.upper()} {path}"
    if query:
        text += "?" + urlencode(query)
    return text
