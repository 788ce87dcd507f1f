"""In-memory fakes of the ports (mailproxy/service/ports.py), for unit tests of the use cases.

Dict-backed, and keeping the conditions the DynamoDB store keeps: a new message's id must be
free and a replacement must still wait under the ticket it was read with; a tenant id is
taken once; a message a sender holds under a live lease is not deleted; a watch moves only
if the message is as read. What they do not model (transactions, sizes, indexes' eventual
consistency) belongs to the integration tests against moto.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mailproxy.domain.account import Account, StoredAccount
from mailproxy.domain.large_files import FileLink
from mailproxy.domain.metrics import Counts
from mailproxy.domain.ports import DeleteOutcome, SubmissionWrite
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
    """One store for every port but delivery's, as the DynamoDB store is."""

    tenants: dict[str, Tenant] = field(default_factory=dict)
    accounts: dict[tuple[str, str], StoredAccount] = field(default_factory=dict)
    states: dict[tuple[str, str], MessageState] = field(default_factory=dict)
    payloads: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[MessageEvent]] = field(default_factory=dict)  # by tenant
    counts: Counts = field(default_factory=Counter)
    file_links: dict[str, FileLink] = field(default_factory=dict)
    confirmed: list[Reference] = field(default_factory=list)
    syncs: dict[str, SyncState] = field(default_factory=dict)  # by tenant, once it has one

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

    # -- large files -------------------------------------------------------------------------

    def put_file_link(self, token_hash: str, link: FileLink) -> bool:
        if token_hash in self.file_links:
            return False
        self.file_links[token_hash] = link
        return True

    def get_file_link(self, token_hash: str) -> FileLink | None:
        return self.file_links.get(token_hash)


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
    queues: ports.Queues = FakeQueues()
    sealer: ports.Sealer = FakeSealer()
    opener: ports.Opener = FakeSealer()
    presigner: ports.Presigner = FakePresigner()
    vault: ports.FileVault = FakeVault()
    _ports += [tenant, keys, accounts, submission, listing, housekeeping, suspension, links]
    _ports += [reader, reporting, queues, sealer, opener, presigner, vault]
