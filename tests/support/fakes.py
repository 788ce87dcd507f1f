"""In-memory fakes of the ports (mailproxy/service/ports.py), for unit tests of the use cases.

Dict-backed, and keeping the conditions the DynamoDB store keeps: a new message's id must be
free and a replacement must still wait under the ticket it was read with; a tenant id is
taken once; a message a sender holds under a live lease is not deleted; a watch moves only
if the message is as read. What they do not model (transactions, sizes, indexes' eventual
consistency) belongs to the integration tests against moto.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mailproxy.domain.account import Account, StoredAccount
from mailproxy.domain.command_log import CommandQuery, CommandRecord
from mailproxy.domain.errors import StaleWrite
from mailproxy.domain.large_files import FileLink
from mailproxy.domain.metrics import Counts
from mailproxy.domain.ports import (
    AttemptOutcome,
    BatchClaimed,
    BatchClaimResult,
    BatchRead,
    BatchRefused,
    Claimed,
    ClaimRequest,
    ClaimResult,
    CountersChanged,
    DeleteOutcome,
    Failed,
    HandedBack,
    NotClaimable,
    Retry,
    Sent,
    StoredBody,
    SubmissionWrite,
)
from mailproxy.domain.rate_limit import SlotWrite, WindowCounts
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.reporting import SyncState
from mailproxy.domain.scheduling import due_shard, held_shard
from mailproxy.domain.status import FINAL_STATUSES, WAITING_STATUSES, MessageStatus
from mailproxy.domain.tenant import StoredClientAuth, Tenant
from mailproxy.queueing import Enqueue, Reference

T0 = 1_900_000_000.0


@dataclass
class FakeClock:
    """A clock that moves only when told."""

    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeQueues:
    """The priority queues: what was sent, in order."""

    sent: list[Enqueue] = field(default_factory=list)

    def send(self, items: list[Enqueue]) -> None:
        self.sent.extend(items)

    def message_ids(self) -> list[str]:
        return [item.reference.message_id for item in self.sent]


class FakeSealer:
    """Seals reversibly, bound to its context: opening with another context fails."""

    def seal(self, plaintext: str, context: dict[str, str]) -> str:
        return f"sealed[{sorted(context.items())}]:{plaintext[::-1]}"

    def open(self, sealed: str, context: dict[str, str]) -> str:
        prefix = f"sealed[{sorted(context.items())}]:"
        if not sealed.startswith(prefix):
            raise ValueError("sealed for another context")
        return sealed.removeprefix(prefix)[::-1]


@dataclass
class FakePresigner:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def presigned_get(
        self, bucket: str, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> str:
        self.calls.append(
            {
                "bucket": bucket,
                "key": key,
                "filename": filename,
                "content_type": content_type,
                "expires_in": expires_in,
            }
        )
        return f"https://{bucket}.s3.test/{key}?expires_in={expires_in}"


@dataclass
class FakeVault:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def put(self, bucket: str, key: str, content: bytes, content_type: str, filename: str) -> None:
        self.objects[(bucket, key)] = content


@dataclass
class InMemoryStore:
    """One store for every port, as the DynamoDB store is."""

    tenants: dict[str, Tenant] = field(default_factory=dict)
    accounts: dict[tuple[str, str], StoredAccount] = field(default_factory=dict)
    states: dict[tuple[str, str], MessageState] = field(default_factory=dict)
    payloads: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[MessageEvent]] = field(default_factory=dict)  # by tenant
    counts: Counts = field(default_factory=Counter)
    file_links: dict[str, FileLink] = field(default_factory=dict)
    confirmed: list[Reference] = field(default_factory=list)
    syncs: dict[str, SyncState] = field(default_factory=dict)  # by tenant, once it has one
    windows: dict[str, WindowCounts] = field(default_factory=dict)  # rate-limit items

    # -- tenants and keys --------------------------------------------------------------------

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        return self.tenants.get(tenant_id)

    def list_tenants(self) -> list[Tenant]:
        return list(self.tenants.values())

    def create_tenant(self, tenant: Tenant) -> bool:
        if tenant.id in self.tenants:
            return False
        self.tenants[tenant.id] = tenant
        return True

    def patch_tenant(self, tenant_id: str, patch: dict[str, Any], now: float) -> bool:
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            return False
        changes = dict(patch)
        if "client_auth" in changes and changes["client_auth"] is None:
            changes["client_auth"] = StoredClientAuth()
        if "suspended_batches" in changes:
            changes["suspended_batches"] = frozenset(changes["suspended_batches"] or ())
        self.tenants[tenant_id] = replace(tenant, **changes, updated_at=now)
        return True

    def delete_tenant(self, tenant_id: str) -> bool:
        """The tenant with everything it owns."""
        if self.tenants.pop(tenant_id, None) is None:
            return False
        for table in (self.accounts, self.states, self.payloads):
            for key in [key for key in table if key[0] == tenant_id]:
                del table[key]
        self.events.pop(tenant_id, None)
        return True

    def tenant_id_for_key(self, key_hash: str) -> str | None:
        for tenant in self.tenants.values():
            if tenant.api_key_hash == key_hash:
                return tenant.id
        return None

    # -- accounts ----------------------------------------------------------------------------

    def put_account(
        self, account: Account, sealed_password: str | None, keep_password: bool, now: float
    ) -> None:
        assert account.tenant_id is not None
        key = (account.tenant_id, account.id)
        existing = self.accounts.get(key)
        if keep_password and existing is not None:
            sealed_password = existing.sealed_password
        self.accounts[key] = StoredAccount(
            account=account.model_copy(update={"password": None}),
            created_at=existing.created_at if existing is not None else now,
            updated_at=now,
            sealed_password=sealed_password,
        )

    def get_account(self, tenant_id: str, account_id: str) -> StoredAccount | None:
        return self.accounts.get((tenant_id, account_id))

    def tenants_with_account(self, account_id: str) -> list[str]:
        return sorted(tenant for tenant, account in self.accounts if account == account_id)

    def list_accounts(self, tenant_id: str | None) -> list[StoredAccount]:
        return [
            stored
            for (tenant, _), stored in sorted(self.accounts.items())
            if tenant_id is None or tenant == tenant_id
        ]

    def delete_account(self, tenant_id: str, account_id: str) -> bool:
        return self.accounts.pop((tenant_id, account_id), None) is not None

    # -- messages in -------------------------------------------------------------------------

    def get_states(self, tenant_id: str, ids: list[str]) -> dict[str, MessageState]:
        return {i: self.states[(tenant_id, i)] for i in ids if (tenant_id, i) in self.states}

    def get_state(self, tenant_id: str, message_id: str) -> MessageState | None:
        return self.states.get((tenant_id, message_id))

    def save_submissions(self, writes: list[SubmissionWrite]) -> set[str]:
        stale: set[str] = set()
        for write in writes:
            key = (write.state.tenant_id, write.state.id)
            current = self.states.get(key)
            if write.expected_ticket is None:
                fits = current is None
            else:
                fits = (
                    current is not None
                    and current.ticket == write.expected_ticket
                    and current.status in WAITING_STATUSES
                )
            if not fits:
                stale.add(write.state.id)
                continue
            self.states[key] = write.state
            self.payloads[key] = write.payload
            if write.event is not None:
                self.events.setdefault(write.state.tenant_id, []).append(write.event)
        return stale

    def confirm_queued(self, references: list[Reference]) -> None:
        """Off the scheduler's watch, if the reference is still the live one and unclaimed."""
        for ref in references:
            state = self.states.get((ref.tenant_id, ref.message_id))
            if state and state.ticket == ref.ticket and state.status in WAITING_STATUSES:
                self.states[(ref.tenant_id, ref.message_id)] = replace(
                    state, due_shard=None, due_at=None
                )
            self.confirmed.append(ref)

    def add_counts(self, counts: Counts) -> None:
        self.counts.update(counts)

    def list_states(self, tenant_id: str | None) -> list[MessageState]:
        return [s for s in self.states.values() if tenant_id is None or s.tenant_id == tenant_id]

    def get_payloads(self, tenant_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {i: self.payloads[(tenant_id, i)] for i in ids if (tenant_id, i) in self.payloads}

    def events_by_message(self, tenant_id: str) -> dict[str, list[MessageEvent]]:
        by_message: dict[str, list[MessageEvent]] = {}
        for event in self.events.get(tenant_id, []):
            by_message.setdefault(event.message_id, []).append(event)
        return by_message

    # -- housekeeping ------------------------------------------------------------------------

    def delete_message(self, tenant_id: str, message_id: str, now: float) -> DeleteOutcome:
        state = self.states.get((tenant_id, message_id))
        if state is None:
            return "not_found"
        leased = state.lease_until is not None and state.lease_until >= now
        if state.status is MessageStatus.SENDING and leased:
            return "in_flight"
        del self.states[(tenant_id, message_id)]
        self.payloads.pop((tenant_id, message_id), None)
        return "removed"

    def finished_before(self, tenant_id: str, before_ts: float) -> list[MessageState]:
        return [
            s
            for s in self.list_states(tenant_id)
            if s.status in FINAL_STATUSES and s.updated_at < before_ts
        ]

    def remove_finished(self, tenant_id: str, message_id: str, event_ids: list[str]) -> bool:
        state = self.states.get((tenant_id, message_id))
        if state is None or state.status not in FINAL_STATUSES:
            return False
        del self.states[(tenant_id, message_id)]
        self.payloads.pop((tenant_id, message_id), None)
        gone = set(event_ids)
        self.events[tenant_id] = [
            e for e in self.events.get(tenant_id, []) if e.event_id not in gone
        ]
        return True

    def count_active(self, tenant_id: str, batch_code: str | None = None) -> int:
        active = (*WAITING_STATUSES, MessageStatus.SENDING)
        return sum(
            1
            for s in self.list_states(tenant_id)
            if s.status in active and (batch_code is None or s.batch_code == batch_code)
        )

    # -- scheduling --------------------------------------------------------------------------

    def due_messages(self, shard: str, until: float, limit: int) -> list[MessageState]:
        due = [
            s
            for s in self.states.values()
            if s.due_shard == shard and s.due_at is not None and s.due_at <= until
        ]
        return sorted(due, key=lambda s: s.due_at or 0.0)[:limit]

    def held_messages(self, tenant_id: str, limit: int = 1000) -> list[MessageState]:
        shard = held_shard(tenant_id)
        return [s for s in self.states.values() if s.due_shard == shard][:limit]

    def take_due(self, state: MessageState, watch_at: float) -> bool:
        """Move the watch on, only if the message is as it was read (ticket and watch)."""
        key = (state.tenant_id, state.id)
        current = self.states.get(key)
        if current is None or current.ticket != state.ticket or current.due_at != state.due_at:
            return False
        self.states[key] = replace(
            current, due_shard=due_shard(state.tenant_id, state.id), due_at=watch_at
        )
        return True

    def hold(
        self, tenant_id: str, message_id: str, ticket: str, new_ticket: str, now: float
    ) -> bool:
        current = self.states.get((tenant_id, message_id))
        if current is None or current.ticket != ticket or current.status not in WAITING_STATUSES:
            return False
        self.states[(tenant_id, message_id)] = replace(
            current, ticket=new_ticket, due_shard=held_shard(tenant_id), due_at=now, updated_at=now
        )
        return True

    # -- delivery reports --------------------------------------------------------------------

    def sync_state(self, tenant_id: str) -> SyncState | None:
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            return None
        return self.syncs.get(tenant_id) or SyncState(
            tenant_id,
            active=tenant.active,
            last_sync_ts=tenant.last_sync_ts,
            next_sync_after=tenant.next_sync_after,
        )

    def tenants_for_sync(
        self, tenant_ids: Sequence[str] | None = None
    ) -> list[tuple[Tenant, SyncState]]:
        ids = sorted(self.tenants if tenant_ids is None else set(tenant_ids) & set(self.tenants))
        return [(self.tenants[i], state) for i in ids if (state := self.sync_state(i))]

    def has_unreported(self, tenant_id: str) -> bool:
        return any(event.reported_ts is None for event in self.events.get(tenant_id, []))

    def unreported_events(self, tenant_id: str, limit: int = 1000) -> list[MessageEvent]:
        waiting = [e for e in self.events.get(tenant_id, []) if e.reported_ts is None]
        return sorted(waiting, key=lambda e: (e.event_ts, e.event_id))[:limit]

    def mark_reported(self, tenant_id: str, events: Sequence[MessageEvent], now: float) -> int:
        wanted = {event.event_id for event in events}
        marked = 0
        stored = self.events.get(tenant_id, [])
        for position, event in enumerate(stored):
            if event.event_id in wanted and event.reported_ts is None:
                stored[position] = replace(event, reported_ts=now)
                marked += 1
        return marked

    def acquire_sync_lease(self, tenant_id: str, now: float, seconds: float) -> bool:
        state = self.sync_state(tenant_id)
        if state is None or (state.sync_lease_until is not None and state.sync_lease_until > now):
            return False
        self.syncs[tenant_id] = replace(state, sync_lease_until=now + seconds)
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
        """As the store records it (its docstring): the lease freed only if still this one."""
        state = self.sync_state(tenant_id)
        if state is None:
            return
        if ok:
            state = replace(state, last_sync_ts=now, next_sync_after=next_sync_after)
        elif next_sync_after is not None:
            state = replace(state, next_sync_after=next_sync_after)
        state = replace(state, sync_failures=failures, sync_retry_after=retry_after)
        if lease_until is None or state.sync_lease_until == lease_until:
            state = replace(state, sync_lease_until=None)
        self.syncs[tenant_id] = state

    # -- delivery ----------------------------------------------------------------------------

    def get_bodies(self, tenant_id: str, ids: Iterable[str]) -> dict[str, StoredBody]:
        found = {}
        for message_id in ids:
            key = (tenant_id, message_id)
            if key in self.payloads and key in self.states:
                found[message_id] = StoredBody(self.states[key].body_version, self.payloads[key])
        return found

    def read_batch(
        self,
        tenant_ids: Iterable[str],
        accounts: Iterable[tuple[str, str]],
        bodies: Iterable[tuple[str, str]],
    ) -> BatchRead:
        read = BatchRead()
        read.tenants = {t: self.tenants[t] for t in tenant_ids if t in self.tenants}
        read.accounts = {k: self.accounts[k] for k in accounts if k in self.accounts}
        for tenant_id, message_id in bodies:
            for found_id, body in self.get_bodies(tenant_id, [message_id]).items():
                read.bodies[(tenant_id, found_id)] = body
        return read

    def get_window_counts(self, keys: Iterable[str]) -> dict[str, WindowCounts]:
        return {key: self.windows.get(key, WindowCounts(key)) for key in keys}

    def claim(
        self,
        tenant_id: str,
        message_id: str,
        ticket: str,
        body_version: str | None,
        *,
        now: float,
        lease_seconds: int,
        claim_token: str,
        charges: list[SlotWrite],
        after_expired_lease: bool = False,
    ) -> ClaimResult:
        """The message's one owner, with its slots, or nothing written (the store's claim)."""
        request = ClaimRequest(tenant_id, message_id, ticket, body_version, claim_token)
        if not self._claimable(request, now, after_expired_lease):
            return NotClaimable()
        changed = [write.key for write in charges if not self._slot_fits(write)]
        if changed:
            return CountersChanged(changed)
        self._take(request, charges, now, lease_seconds)
        return Claimed(claim_token, after_expired_lease)

    def claim_many(
        self,
        requests: list[ClaimRequest],
        charges: list[SlotWrite],
        *,
        now: float,
        lease_seconds: int,
    ) -> BatchClaimResult:
        refused = tuple(i for i, r in enumerate(requests) if not self._claimable(r, now, False))
        changed = tuple(write.key for write in charges if not self._slot_fits(write))
        if refused or changed:
            return BatchRefused(refused, changed)
        for position, request in enumerate(requests):
            self._take(request, charges if position == 0 else [], now, lease_seconds)
        return BatchClaimed()

    def _claimable(self, request: ClaimRequest, now: float, after_expired_lease: bool) -> bool:
        state = self.states.get((request.tenant_id, request.message_id))
        if state is None or state.ticket != request.ticket:
            return False
        if state.body_version != request.body_version:
            return False
        if after_expired_lease:
            return (
                state.status is MessageStatus.SENDING
                and state.lease_until is not None
                and state.lease_until < now
            )
        return state.status in WAITING_STATUSES and (
            state.deferred_ts is None or state.deferred_ts <= now
        )

    def _slot_fits(self, write: SlotWrite) -> bool:
        """The condition of a SlotWrite (domain/rate_limit.py) on the item as stored."""
        item = self.windows.get(write.key)
        if write.version == 0:
            return item is None
        if item is None or item.version != write.version:
            return False
        if write.below is not None:
            return item.counts.get(write.bucket, 0) + write.sends <= write.below
        if write.newest_at_most is not None:
            bucket, most = write.newest_at_most
            return item.counts.get(bucket, 0) <= most
        return True

    def _take(
        self, request: ClaimRequest, charges: list[SlotWrite], now: float, lease_seconds: int
    ) -> None:
        key = (request.tenant_id, request.message_id)
        state = self.states[key]
        self.states[key] = replace(
            state,
            status=MessageStatus.SENDING,
            lease_until=now + lease_seconds,
            claim_token=request.claim_token,
            attempts=state.attempts + 1,
            updated_at=now,
            due_shard=due_shard(*key),
            due_at=now + lease_seconds,
        )
        for write in charges:
            item = self.windows.get(write.key, WindowCounts(write.key))
            counts = {b: n for b, n in item.counts.items() if b not in write.drop}
            counts[write.bucket] = counts.get(write.bucket, 0) + write.sends
            self.windows[write.key] = WindowCounts(write.key, write.new_version, counts)

    def _unowned(self, state: MessageState, now: float) -> bool:
        leased_out = state.lease_until is not None and state.lease_until < now
        return state.status in WAITING_STATUSES or (
            state.status is MessageStatus.SENDING and leased_out
        )

    def requeue_waiting(
        self,
        tenant_id: str,
        message_id: str,
        old_ticket: str,
        new_ticket: str,
        *,
        now: float,
        due_ts: float | None = None,
        events: list[MessageEvent] | None = None,
        watch_at: float | None = None,
    ) -> bool:
        state = self.states.get((tenant_id, message_id))
        if state is None or state.ticket != old_ticket or not self._unowned(state, now):
            return False
        state = replace(state, ticket=new_ticket, **self._watch(tenant_id, message_id, watch_at))
        if due_ts is not None:
            state = replace(
                state,
                status=MessageStatus.DEFERRED,
                deferred_ts=due_ts,
                updated_at=now,
                lease_until=None,
            )
        self.states[(tenant_id, message_id)] = state
        self.events.setdefault(tenant_id, []).extend(events or [])
        return True

    def fail_waiting(
        self,
        tenant_id: str,
        message_id: str,
        ticket: str,
        *,
        now: float,
        events: list[MessageEvent],
    ) -> bool:
        state = self.states.get((tenant_id, message_id))
        if state is None or state.ticket != ticket or not self._unowned(state, now):
            return False
        self.states[(tenant_id, message_id)] = replace(
            state,
            status=MessageStatus.ERROR,
            error=events[-1].description if events else None,
            error_ts=now,
            updated_at=now,
            deferred_ts=None,
            lease_until=None,
            due_shard=None,
            due_at=None,
        )
        self.events.setdefault(tenant_id, []).extend(events)
        return True

    def finish_attempt(self, outcome: AttemptOutcome) -> None:
        if self.finish_many([outcome]):
            raise StaleWrite(outcome.message_id)

    def finish_many(self, outcomes: list[AttemptOutcome]) -> set[int]:
        """Each outcome written only while its attempt owns the message; the stale ones'
        positions (nothing of theirs written)."""
        stale: set[int] = set()
        for position, outcome in enumerate(outcomes):
            key = (outcome.tenant_id, outcome.message_id)
            state = self.states.get(key)
            if (
                state is None
                or state.status is not MessageStatus.SENDING
                or state.claim_token != outcome.claim_token
            ):
                stale.add(position)
                continue
            self.states[key] = _after(state, outcome)
            self.events.setdefault(outcome.tenant_id, []).extend(outcome.events)
            for given in outcome.release:
                item = self.windows.get(given.key)
                if item is not None:
                    counts = {**item.counts}
                    counts[given.bucket] = counts.get(given.bucket, 0) - 1
                    self.windows[given.key] = WindowCounts(given.key, item.version, counts)
        return stale

    @staticmethod
    def _watch(tenant_id: str, message_id: str, watch_at: float | None) -> dict[str, Any]:
        if watch_at is None:
            return {"due_shard": None, "due_at": None}
        return {"due_shard": due_shard(tenant_id, message_id), "due_at": watch_at}

    # -- large files -------------------------------------------------------------------------

    def put_file_link(self, token_hash: str, link: FileLink) -> bool:
        if token_hash in self.file_links:
            return False
        self.file_links[token_hash] = link
        return True

    def get_file_link(self, token_hash: str) -> FileLink | None:
        return self.file_links.get(token_hash)


def _after(state: MessageState, outcome: AttemptOutcome) -> MessageState:
    """The message once an attempt's outcome is written (store/messages.py's actions)."""
    now = outcome.now
    state = replace(
        state,
        status=outcome.status,
        updated_at=now,
        lease_until=None,
        **InMemoryStore._watch(state.tenant_id, state.id, outcome.watch_at),
    )
    match outcome.result:
        case Sent(refused=refused):
            return replace(state, sent_ts=now, deferred_ts=None, error=None, refused=refused)
        case Failed(error=error):
            return replace(state, error_ts=now, error=error, deferred_ts=None)
        case Retry(error=error, due_ts=due_ts, new_ticket=ticket, retries=retries):
            return replace(state, deferred_ts=due_ts, ticket=ticket, error=error, retries=retries)
        case HandedBack(due_ts=due_ts, new_ticket=ticket):
            return replace(state, deferred_ts=due_ts, ticket=ticket)


@dataclass
class FakeTransport:
    """SMTP: each send recorded, or the error queued for it raised instead."""

    sent: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def send(
        self, account: Account, envelope_from: str, recipients: list[str], message: bytes
    ) -> dict[str, str]:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((envelope_from, recipients, message))
        return {}


@dataclass
class FakeCommandLog:
    """The command log's table: records by id; a taken id is refused, as the store's
    condition refuses it."""

    records: dict[int, CommandRecord] = field(default_factory=dict)
    failures: list[Exception] = field(default_factory=list)

    def put_command(self, record: CommandRecord) -> bool:
        if self.failures:
            raise self.failures.pop(0)
        if record.id in self.records:
            return False
        self.records[record.id] = record
        return True

    def commands(
        self, query: CommandQuery, *, now: float, retention_seconds: float, newest_first: bool
    ) -> list[CommandRecord]:
        since = query.since_ts if query.since_ts is not None else now - retention_seconds
        ordered = sorted(self.records.values(), key=lambda r: r.id, reverse=newest_first)
        found = [r for r in ordered if r.command_ts >= since and query.admits(r)]
        return found if query.limit is None else found[: query.limit]


def _conforms() -> None:
    """Never called: mypy checks here that the fakes provide the ports they stand for."""
    from mailproxy.service import ports

    store = InMemoryStore()
    _ports: list[object] = []
    tenant: ports.TenantStore = store
    keys: ports.KeyStore = store
    accounts: ports.AccountStore = store
    submission: ports.SubmissionStore = store
    listing: ports.ListingStore = store
    housekeeping: ports.HousekeepingStore = store
    suspension: ports.SuspensionStore = store
    links: ports.FileLinkStore = store
    reader: ports.FileLinkReader = store
    reporting: ports.ReportingStore = store
    delivery: ports.DeliveryStore = store
    transport: ports.Transport = FakeTransport()
    queues: ports.Queues = FakeQueues()
    sealer: ports.Sealer = FakeSealer()
    opener: ports.Opener = FakeSealer()
    presigner: ports.Presigner = FakePresigner()
    vault: ports.FileVault = FakeVault()
    command_log: ports.CommandLog = FakeCommandLog()
    _ports += [tenant, keys, accounts, submission, listing, housekeeping, suspension, links]
    _ports += [reader, reporting, delivery, transport, queues, sealer, opener, presigner, vault]
    _ports += [command_log]
