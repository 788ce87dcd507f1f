"""The command log's table: one item per state-changing API call, partitioned by day and
shard (domain/command_log.py), sorted by id, with a sparse by-tenant index.

A model of its own, bound apart from the Store's, so the api handler's cold start binds it
only when the first call is recorded."""

from __future__ import annotations

import heapq
import json
import zlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from mailproxy.domain.command_log import (
    CommandQuery,
    CommandRecord,
    days_between,
    first_id_at,
    last_id_at,
    partition_of,
    partitions_of_day,
)
from mailproxy.store.base import storage_failure, written_if_condition_held
from mailproxy.store.models import _meta

BY_TENANT = "by-tenant"
MAX_PACKED_PAYLOAD_BYTES = 350_000
TTL_LAG_SECONDS = 2 * 86400
CLOCK_SKEW_SECONDS = 3600


@lru_cache(maxsize=4)
def bound_model(table_name: str) -> Any:
    class ByTenant(GlobalSecondaryIndex["CommandModel"]):
        Meta = type("Meta", (), {"index_name": BY_TENANT, "projection": AllProjection()})
        tenant_id = UnicodeAttribute(hash_key=True)
        id = UnicodeAttribute(range_key=True)

    class CommandModel(Model):
        Meta = _meta(table_name)
        partition = UnicodeAttribute(hash_key=True)
        # The id as zero-padded text: the tables' keys are strings (infra/resources.py).
        id = UnicodeAttribute(range_key=True)
        command_ts = NumberAttribute()
        endpoint = UnicodeAttribute()
        tenant_id = UnicodeAttribute(null=True)
        # The masked payload as zlib-compressed JSON: replayed as it was sent, key order kept.
        payload_zlib = BinaryAttribute(legacy_encoding=False)
        response_status = NumberAttribute(null=True)
        expires_at = NumberAttribute()
        by_tenant = ByTenant()

    return CommandModel


class CommandLogRecords:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _m(self) -> Any:
        return bound_model(self._table_name)

    def put_command(self, record: CommandRecord) -> bool:
        """False (nothing written) when the id is taken: the caller salts again."""
        m = self._m
        item = m(
            partition_of(record.id),
            _key(record.id),
            command_ts=record.command_ts,
            endpoint=record.endpoint,
            tenant_id=record.tenant_id,
            payload_zlib=_packed(record.payload),
            response_status=record.response_status,
            expires_at=record.expires_at,
        )
        return written_if_condition_held(lambda: item.save(condition=m.id.does_not_exist()))

    def commands(
        self, query: CommandQuery, *, now: float, retention_seconds: float, newest_first: bool
    ) -> list[CommandRecord]:
        """What the query admits, up to its limit, in id order (newest first or oldest)."""
        until = query.until_ts if query.until_ts is not None else now
        since = query.since_ts if query.since_ts is not None else now - retention_seconds
        # Only the days that can hold a record are read (the query still filters by its own
        # bounds): none is older than the retention, give or take the two days DynamoDB's TTL
        # may take to remove it, nor newer than now and a clock's skew. A since_ts of 1970 or
        # an until_ts centuries ahead would read one empty day per day.
        since = max(since, now - retention_seconds - TTL_LAG_SECONDS)
        until = min(until, now + CLOCK_SKEW_SECONDS)
        try:
            found = (
                self._by_tenant(query.tenant_id, since, until, newest_first)
                if query.tenant_id is not None
                else self._by_day(since, until, newest_first)
            )
            records: list[CommandRecord] = []
            for item in found:
                record = _record(item)
                if not query.admits(record):
                    continue
                records.append(record)
                if query.limit is not None and len(records) >= query.limit:
                    break
            return records
        except PynamoDBException as error:
            raise storage_failure(error) from error

    def _by_tenant(
        self, tenant_id: str, since: float, until: float, newest_first: bool
    ) -> Iterator[Any]:
        m = self._m
        return iter(
            m.by_tenant.query(
                tenant_id,
                m.id.between(_key(first_id_at(since)), _key(last_id_at(until))),
                scan_index_forward=not newest_first,
            )
        )

    def _by_day(self, since: float, until: float, newest_first: bool) -> Iterator[Any]:
        m = self._m
        days = days_between(since, until)
        if not newest_first:
            days.reverse()
        low, high = _key(first_id_at(since)), _key(last_id_at(until))
        for day in days:
            # The day's shards, each in id order, merged into one ordered stream; read lazily,
            # so a listing that reaches its limit early stops reading.
            shards = [
                m.query(
                    partition,
                    m.id.between(low, high),
                    scan_index_forward=not newest_first,
                )
                for partition in partitions_of_day(day)
            ]
            yield from heapq.merge(*shards, key=lambda item: item.id, reverse=newest_first)


def _packed(payload: dict[str, Any]) -> bytes:
    text = json.dumps(payload, separators=(",", ":"), default=str).encode()
    packed = zlib.compress(text, 6)
    if len(packed) <= MAX_PACKED_PAYLOAD_BYTES:
        return packed
    # Over what one item holds (400 KB with its keys): what the call was, not all it carried.
    return zlib.compress(json.dumps({"truncated": True, "payload_bytes": len(text)}).encode())


def _key(record_id: int) -> str:
    return f"{record_id:017d}"


def _record(item: Any) -> CommandRecord:
    return CommandRecord(
        id=int(item.id),
        command_ts=int(item.command_ts),
        endpoint=item.endpoint,
        tenant_id=item.tenant_id,
        payload=json.loads(zlib.decompress(item.payload_zlib)),
        response_status=None if item.response_status is None else int(item.response_status),
        expires_at=int(item.expires_at),
    )
