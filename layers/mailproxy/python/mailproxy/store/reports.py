"""Delivery reports: a tenant's unreported events in order, marking them reported, and the
tenant's sync bookkeeping (the lease of the one sync in flight, failures and backoff).

An event waits on the sparse `unreported` index (its `unreported` attribute is the tenant id)
until a report of it was acknowledged; marking it reported removes the attribute, on the
condition that it is still there, so no event is marked twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from mailproxy.chunking import chunks
from mailproxy.domain.record import MessageEvent
from mailproxy.domain.reporting import MAX_EVENTS_PER_CALL, RETENTION_SECONDS, SyncState, is_final
from mailproxy.domain.tenant import Tenant
from mailproxy.store.base import BATCH_GET_LIMIT, Records, failed_items, is_condition_failure
from mailproxy.store.messages import MessageRecords
from mailproxy.store.tenants import TenantRecords

# DynamoDB: at most 100 items in one transaction.
_TRANSACTION_ITEMS = 99
_SYNC_ATTRIBUTES = [
    "id",
    "active",
    "last_sync_ts",
    "next_sync_after",
    "sync_failures",
    "sync_retry_after",
    "sync_lease_until",
]


class ReportRecords(Records):
    # -- events -----------------------------------------------------------------------------

    def has_unreported(self, tenant_id: str) -> bool:
        """Whether the index holds an event of the tenant waiting to be reported (as far as
        the index has caught up: a cheap look before a sync is decided)."""
        index = self._m.event.by_unreported
        return any(True for _ in index.query(tenant_id, limit=1))

    def unreported_events(
        self, tenant_id: str, limit: int = MAX_EVENTS_PER_CALL
    ) -> list[MessageEvent]:
        """The tenant's oldest events not yet reported, in event order, at most `limit`.

        The index is read first, then each event again from the table with a consistent
        read: an index lagging behind a mark just made does not hand an event out again."""
        keys = [item.event_id for item in self._m.event.by_unreported.query(tenant_id, limit=limit)]
        if not keys:
            return []
        current: dict[str, Any] = {}
        for chunk in chunks(keys, BATCH_GET_LIMIT):
            for item in self._m.event.batch_get(
                [(tenant_id, key) for key in chunk], consistent_read=True
            ):
                current[item.event_id] = item
        return [
            MessageRecords._to_event(current[key])
            for key in keys
            if key in current and current[key].unreported is not None
        ]

    def mark_reported(self, tenant_id: str, events: Sequence[MessageEvent], now: float) -> int:
        """Stamp these events reported (and the message of a final one, sent or error), many
        per transaction. Each only if it is still unreported: one marked meanwhile is left as
        it is, and a message that is gone is not brought back. How many were marked."""
        unique = list({event.event_id: event for event in events}.values())
        marked = 0
        for group in _groups(unique):
            marked += self._mark_group(tenant_id, group, now)
        return marked

    def _mark_group(self, tenant_id: str, group: list[MessageEvent], now: float) -> int:
        e, m, b = self._m.event, self._m.message, self._m.body
        # Reported, the message's record is kept for the retention period, then DynamoDB's
        # TTL removes it; nothing unreported ever carries an expiry.
        expires_at = int(now + RETENTION_SECONDS)
        remaining = list(group)
        # Messages that turned out gone: their events are still marked.
        gone: set[str] = set()
        # Each refusal drops at least one write: this settles.
        for _ in range(2 * len(group) + 1):
            if not remaining:
                return 0
            ops = _operations(remaining, gone)
            try:
                with self._transaction() as tx:
                    for kind, event in ops:
                        if kind == "event":
                            tx.update(
                                e(tenant_id, event.event_id),
                                actions=[
                                    e.unreported.remove(),
                                    e.reported_ts.set(now),
                                    e.expires_at.set(expires_at),
                                ],
                                condition=e.unreported.exists(),
                            )
                        elif kind == "message":
                            tx.update(
                                m(tenant_id, event.message_id),
                                actions=[m.reported_ts.set(now), m.expires_at.set(expires_at)],
                                condition=m.id.exists(),
                            )
                        else:
                            tx.update(
                                b(tenant_id, event.message_id),
                                actions=[b.expires_at.set(expires_at)],
                                condition=b.id.exists(),
                            )
                return len(remaining)
            except TransactWriteError as error:
                failed = failed_items(error)
                if not is_condition_failure(error) or not failed:
                    raise
                for index in failed:
                    kind, event = ops[index]
                    if kind == "event":
                        remaining.remove(event)  # reported meanwhile (or removed)
                    else:
                        gone.add(event.message_id)
        raise RuntimeError("marking events reported did not settle")  # pragma: no cover

    # -- the tenant's sync state ------------------------------------------------------------

    def sync_state(self, tenant_id: str) -> SyncState | None:
        try:
            item = self._m.tenant.get(
                tenant_id, consistent_read=True, attributes_to_get=_SYNC_ATTRIBUTES
            )
        except self._m.tenant.DoesNotExist:
            return None
        return _to_sync_state(item)

    def tenants_for_sync(
        self, tenant_ids: Sequence[str] | None = None
    ) -> list[tuple[Tenant, SyncState]]:
        """Tenants with their sync state, in one read of each: every tenant (None), or those
        named that exist; ordered by id."""
        items: Iterator[Any]
        if tenant_ids is None:
            items = self._m.tenant.scan()
        else:
            items = self._batch_get_tenants(sorted(set(tenant_ids)))
        found = [(TenantRecords._to_tenant(item), _to_sync_state(item)) for item in items]
        return sorted(found, key=lambda pair: pair[0].id)

    def _batch_get_tenants(self, ids: list[str]) -> Iterator[Any]:
        for chunk in chunks(ids, BATCH_GET_LIMIT):
            yield from self._m.tenant.batch_get(chunk, consistent_read=True)

    def acquire_sync_lease(self, tenant_id: str, now: float, seconds: float) -> bool:
        """Become the one sync in flight for the tenant until now + seconds; False when
        another holds an unexpired lease (or the tenant is gone)."""
        m = self._m.tenant
        free = m.sync_lease_until.does_not_exist() | (m.sync_lease_until <= now)
        try:
            m(tenant_id).update(
                actions=[m.sync_lease_until.set(now + seconds)], condition=m.id.exists() & free
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def record_sync(
        self,
        tenant_id: str,
        now: float,
        *,
        ok: bool,
        next_sync_after: float | None,
        failures: int,
        retry_after: float | None,
        lease_until: float | None = None,
    ) -> None:
        """Record how a sync went and release its lease.

        ok: last_sync_ts = now, and the client's next_sync_after is kept (None clears it).
        Not ok: last_sync_ts stays; next_sync_after changes only when one is given.
        failures (0 clears) and retry_after (None clears) are written as given. With
        `lease_until` (the lease this sync took), the lease is released only if it is still
        that one: a sync that outlived its lease does not free another's. Nothing is written
        for a tenant that is gone."""
        m = self._m.tenant
        actions: list[Any] = []
        if ok:
            actions.append(m.last_sync_ts.set(now))
        if ok or next_sync_after is not None:
            actions.append(
                m.next_sync_after.remove()
                if next_sync_after is None
                else m.next_sync_after.set(next_sync_after)
            )
        actions.append(m.sync_failures.set(failures) if failures else m.sync_failures.remove())
        actions.append(
            m.sync_retry_after.remove()
            if retry_after is None
            else m.sync_retry_after.set(retry_after)
        )
        release = m.sync_lease_until.remove()
        held = m.id.exists()
        if lease_until is not None:
            held = held & (m.sync_lease_until == lease_until)
        try:
            m(tenant_id).update(actions=[*actions, release], condition=held)
            return
        except UpdateError as error:
            if not is_condition_failure(error):
                raise
        if lease_until is None:
            return  # the tenant is gone
        try:
            # The lease is another sync's now: record the outcome, leave the lease alone.
            m(tenant_id).update(actions=actions, condition=m.id.exists())
        except UpdateError as error:
            if not is_condition_failure(error):
                raise


def _to_sync_state(item: Any) -> SyncState:
    return SyncState(
        tenant_id=item.id,
        active=bool(item.active) if item.active is not None else True,
        last_sync_ts=item.last_sync_ts,
        next_sync_after=item.next_sync_after,
        sync_failures=int(item.sync_failures or 0),
        sync_retry_after=item.sync_retry_after,
        sync_lease_until=item.sync_lease_until,
    )


def _operations(events: list[MessageEvent], gone: set[str]) -> list[tuple[str, MessageEvent]]:
    """The writes of one transaction: each event, then each message with a final event
    among them (once: one item may appear only once in a transaction)."""
    ops: list[tuple[str, MessageEvent]] = [("event", event) for event in events]
    stamped: set[str] = set()
    for event in events:
        if is_final(event) and event.message_id not in stamped | gone:
            stamped.add(event.message_id)
            ops.append(("message", event))
            ops.append(("body", event))
    return ops


def _groups(events: list[MessageEvent]) -> Iterator[list[MessageEvent]]:
    group: list[MessageEvent] = []
    messages: set[str] = set()
    for event in events:
        weight = 1 + 2 * (is_final(event) and event.message_id not in messages)
        if group and len(group) + 2 * len(messages) + weight > _TRANSACTION_ITEMS:
            yield group
            group, messages = [], set()
        group.append(event)
        if is_final(event):
            messages.add(event.message_id)
    if group:
        yield group
