"""Messages: submission, the sender's claim and outcomes, listing and housekeeping.

Every write that changes a message's state is conditional on what the writer last saw (its
ticket, or the claim token of the attempt it owns), so a stale sender, a redelivered queue
record or a racing request can never overwrite a newer decision.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from mailproxy.chunking import chunks
from mailproxy.domain.errors import StaleWrite
from mailproxy.domain.ports import (
    AttemptOutcome,
    BatchClaimed,
    BatchClaimResult,
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
from mailproxy.domain.priority import Priority
from mailproxy.domain.rate_limit import SlotWrite, WindowCounts
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.scheduling import due_shard, held_shard
from mailproxy.domain.status import FINAL_STATUSES, WAITING_STATUSES, EventType, MessageStatus
from mailproxy.store.base import (
    BATCH_GET_LIMIT,
    Records,
    Transaction,
    failed_items,
    is_condition_failure,
)
from mailproxy.store.payloads import PayloadBucket, payload_key

if TYPE_CHECKING:
    from mailproxy.queueing import Reference

# A payload larger than this goes to the payload bucket: the body item stays small and far
# from DynamoDB's 400 KB item limit.
INLINE_PAYLOAD_BYTES = 100 * 1024
# DynamoDB: at most 100 items and 4 MB in one transaction.
_TRANSACTION_ITEMS = 99
_TRANSACTION_BYTES = 3_500_000


class MessageRecords(Records):
    _payloads: PayloadBucket | None

    # -- submission -----------------------------------------------------------------------

    def get_states(self, tenant_id: str, ids: Iterable[str]) -> dict[str, MessageState]:
        found: dict[str, MessageState] = {}
        for chunk in chunks(sorted(set(ids)), BATCH_GET_LIMIT):
            keys = [(tenant_id, key) for key in chunk]
            for item in self._m.message.batch_get(keys, consistent_read=True):
                found[item.id] = self._to_state(item)
        return found

    def save_submissions(self, writes: list[SubmissionWrite]) -> set[str]:
        """Store new and replacing messages, each only if it is still as the caller saw it.
        Few calls: many messages share one transaction; a conflict sends that group's
        messages one by one. Returns the ids that changed meanwhile (not written)."""
        stale: set[str] = set()
        for group in self._transaction_groups(writes):
            try:
                self._write_submissions(group)
                continue
            except TransactWriteError as error:
                if not is_condition_failure(error):
                    raise
            for write in group:
                if len(group) > 1:
                    try:
                        self._write_submissions([write])
                        continue
                    except TransactWriteError as single:
                        if not is_condition_failure(single):
                            raise
                stale.add(write.state.id)
        return stale

    def _transaction_groups(self, writes: list[SubmissionWrite]) -> list[list[SubmissionWrite]]:
        groups: list[list[SubmissionWrite]] = []
        items = size = 0
        for write in writes:
            weight = 2 + (write.event is not None)
            payload_size = min(len(json.dumps(write.payload)), INLINE_PAYLOAD_BYTES)
            if groups and (
                items + weight <= _TRANSACTION_ITEMS and size + payload_size <= _TRANSACTION_BYTES
            ):
                groups[-1].append(write)
                items, size = items + weight, size + payload_size
            else:
                groups.append([write])
                items, size = weight, payload_size
        return groups

    def _write_submissions(self, group: list[SubmissionWrite]) -> None:
        m = self._m.message
        with self._transaction() as tx:
            for write in group:
                state = write.state
                if write.expected_ticket is None:
                    condition = m.id.does_not_exist()
                else:
                    condition = (m.ticket == write.expected_ticket) & m.status.is_in(
                        *(s.value for s in WAITING_STATUSES)
                    )
                tx.save(self._from_state(state), condition=condition)
                tx.save(self._body_item(state, write.payload))
                if write.event is not None:
                    tx.save(self._from_event(state.tenant_id, write.event))

    def confirm_queued(self, references: list[Reference]) -> None:
        """Take messages whose reference is now on its queue off the scheduler's watch
        (only if that reference is still the live one, and no sender has claimed the message
        meanwhile: a claim puts it on the watch for its lease, which must stay)."""
        m = self._m.message
        unclaimed = m.status.is_in(*(s.value for s in WAITING_STATUSES))
        for group in chunks(references, _TRANSACTION_ITEMS):
            try:
                with self._transaction() as tx:
                    for ref in group:
                        tx.update(
                            m(ref.tenant_id, ref.message_id),
                            actions=[m.due_shard.remove(), m.due_at.remove()],
                            condition=(m.ticket == ref.ticket) & unclaimed,
                        )
            except TransactWriteError as error:
                if not is_condition_failure(error):
                    raise
                for ref in group:  # some moved on meanwhile: confirm the others one by one
                    try:
                        m(ref.tenant_id, ref.message_id).update(
                            actions=[m.due_shard.remove(), m.due_at.remove()],
                            condition=(m.ticket == ref.ticket) & unclaimed,
                        )
                    except UpdateError as single:
                        if not is_condition_failure(single):
                            raise

    def _body_item(self, state: MessageState, payload: dict[str, Any]) -> Any:
        version = state.body_version or ""
        # DynamoDB bills a write per KB of the item: compressed, a 1.2 KB payload takes one
        # unit instead of two, an HTML newsletter a fifth of what it would.
        encoded = json.dumps(payload, separators=(",", ":")).encode()
        if len(encoded) > INLINE_PAYLOAD_BYTES and self._payloads is not None:
            key = payload_key(state.tenant_id, state.id, version)
            self._payloads.put(key, payload)
            return self._m.body(state.tenant_id, state.id, version=version, s3_key=key)
        packed = zlib.compress(encoded, 6)
        return self._m.body(state.tenant_id, state.id, version=version, payload_zlib=packed)

    # -- delivery ---------------------------------------------------------------------------

    def get_bodies(self, tenant_id: str, ids: Iterable[str]) -> dict[str, StoredBody]:
        """The payloads of several messages in one call (a large one read from S3)."""
        found: dict[str, StoredBody] = {}
        for chunk in chunks(sorted(set(ids)), BATCH_GET_LIMIT):
            keys = [(tenant_id, key) for key in chunk]
            for item in self._m.body.batch_get(keys):
                found[item.id] = self._to_body(item)
        return found

    def _to_body(self, item: Any) -> StoredBody:
        if item.s3_key and self._payloads is not None:
            return StoredBody(item.version, self._payloads.get(item.s3_key))
        if item.payload_zlib is not None:
            return StoredBody(item.version, json.loads(zlib.decompress(item.payload_zlib)))
        return StoredBody(item.version, dict(item.payload or {}))

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
        """Make this sender the message's one owner and take its rate-limit slots, in one
        transaction: either all of it happens or none. A message is claimable with this
        reference's ticket and body when it waits and is due; with after_expired_lease, also
        when a previous owner's lease ran out. A slot is taken only while its window's item
        is as the sender's decision assumed (CountersChanged otherwise)."""
        request = ClaimRequest(tenant_id, message_id, ticket, body_version, claim_token)
        failed = self._write_claims([request], charges, now, lease_seconds, after_expired_lease)
        if failed is None:
            return Claimed(claim_token, after_expired_lease)
        if 0 in failed or not failed:
            return NotClaimable()
        return CountersChanged([charges[index - 1].key for index in failed])

    def claim_many(
        self,
        requests: list[ClaimRequest],
        charges: list[SlotWrite],
        *,
        now: float,
        lease_seconds: int,
    ) -> BatchClaimResult:
        """Claim every message of `requests` and take the slots of `charges` (one combined
        write per rate-limit item) in one transaction, as `claim` does for one message:
        all of it or nothing, and when nothing, which messages and items refused."""
        assert len(requests) + len(charges) <= _TRANSACTION_ITEMS
        failed = self._write_claims(requests, charges, now, lease_seconds, False)
        if failed is None:
            return BatchClaimed()
        first_charge = len(requests)
        return BatchRefused(
            not_claimable=tuple(i for i in failed if i < first_charge),
            changed_keys=tuple(charges[i - first_charge].key for i in failed if i >= first_charge),
        )

    def _write_claims(
        self,
        requests: list[ClaimRequest],
        charges: list[SlotWrite],
        now: float,
        lease_seconds: int,
        after_expired_lease: bool,
    ) -> list[int] | None:
        """The claims, then the slot writes, in one transaction: None when it went through,
        else the positions of the items whose condition failed."""
        try:
            with self._transaction() as tx:
                for request in requests:
                    self._claim_message(tx, request, now, lease_seconds, after_expired_lease)
                for charge in charges:
                    self._take_slot(tx, charge)
        except TransactWriteError as error:
            if not is_condition_failure(error):
                raise
            return failed_items(error)
        return None

    def _claim_message(
        self,
        tx: Transaction,
        request: ClaimRequest,
        now: float,
        lease_seconds: int,
        after_expired_lease: bool,
    ) -> None:
        m = self._m.message
        if after_expired_lease:
            claimable = (m.status == MessageStatus.SENDING.value) & (m.lease_until < now)
        else:
            claimable = m.status.is_in(*(s.value for s in WAITING_STATUSES)) & (
                m.deferred_ts.does_not_exist() | (m.deferred_ts <= now)
            )
        same_body = (
            m.body_version.does_not_exist()
            if request.body_version is None
            else (m.body_version == request.body_version)
        )
        tx.update(
            m(request.tenant_id, request.message_id),
            actions=[
                m.status.set(MessageStatus.SENDING.value),
                m.lease_until.set(now + lease_seconds),
                m.claim_token.set(request.claim_token),
                m.attempts.add(1),
                m.updated_at.set(now),
                # Watched until the lease ends: a sender that dies is replaced.
                m.due_shard.set(due_shard(request.tenant_id, request.message_id)),
                m.due_at.set(now + lease_seconds),
            ],
            condition=(m.ticket == request.ticket) & same_body & claimable,
        )

    def _take_slot(self, tx: Transaction, write: SlotWrite) -> None:
        """The conditional write of domain/rate_limit.py's SlotWrite."""
        counter = self._m.counter
        bucket = counter.buckets[str(write.bucket)]
        if write.version == 0:
            tx.update(
                counter(write.key),
                actions=[
                    counter.buckets.set({str(write.bucket): write.sends}),
                    counter.version.set(write.new_version),
                    counter.expires_at.set(write.expires_at),
                ],
                condition=counter.version.does_not_exist(),
            )
        elif write.below is not None:
            tx.update(
                counter(write.key),
                actions=[bucket.set(bucket + write.sends)],
                condition=(counter.version == write.version) & (bucket < write.below),
            )
        else:
            condition = counter.version == write.version
            if write.newest_at_most is not None:
                newest, at_most = write.newest_at_most
                condition &= counter.buckets[str(newest)] <= at_most
            tx.update(
                counter(write.key),
                actions=[
                    bucket.set(write.sends),
                    counter.version.set(write.new_version),
                    counter.expires_at.set(write.expires_at),
                    *(counter.buckets[str(dropped)].remove() for dropped in write.drop),
                ],
                condition=condition,
            )

    def get_window_counts(self, keys: Iterable[str]) -> dict[str, WindowCounts]:
        """The rate-limit items of these keys, read consistently in one call (a key without
        an item yet: version 0, no sends)."""
        wanted = sorted(set(keys))
        found = {key: WindowCounts(key) for key in wanted}
        for chunk in chunks(wanted, BATCH_GET_LIMIT):
            for item in self._m.counter.batch_get(chunk, consistent_read=True):
                raw = item.buckets.as_dict() if item.buckets is not None else {}
                found[item.key] = WindowCounts(
                    item.key,
                    int(item.version or 0),
                    {int(bucket): int(sends) for bucket, sends in raw.items()},
                )
        return found

    def get_state(self, tenant_id: str, message_id: str) -> MessageState | None:
        try:
            return self._to_state(self._m.message.get(tenant_id, message_id, consistent_read=True))
        except self._m.message.DoesNotExist:
            return None

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
        """Give a message nobody is sending a new ticket (its reference about to be queued
        becomes the only live one), and a due time when deferred. False when it moved on."""
        m = self._m.message
        actions = [m.ticket.set(new_ticket), *self._watch(tenant_id, message_id, watch_at)]
        if due_ts is not None:
            actions += [
                m.status.set(MessageStatus.DEFERRED.value),
                m.deferred_ts.set(due_ts),
                m.updated_at.set(now),
                m.lease_until.remove(),
            ]
        condition = (m.ticket == old_ticket) & self._unowned(now)
        try:
            with self._transaction() as tx:
                tx.update(m(tenant_id, message_id), actions=actions, condition=condition)
                for event in events or []:
                    tx.save(self._from_event(tenant_id, event))
        except TransactWriteError as error:
            if is_condition_failure(error):
                return False
            raise
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
        """Fail a message nobody is sending, without a send (over a limit that rejects)."""
        m = self._m.message
        reason = events[-1].description if events else None
        try:
            with self._transaction() as tx:
                tx.update(
                    m(tenant_id, message_id),
                    actions=[
                        m.status.set(MessageStatus.ERROR.value),
                        m.error.set(reason),
                        m.error_ts.set(now),
                        m.updated_at.set(now),
                        m.deferred_ts.remove(),
                        m.lease_until.remove(),
                        *self._watch(tenant_id, message_id, None),
                    ],
                    condition=(m.ticket == ticket) & self._unowned(now),
                )
                for event in events:
                    tx.save(self._from_event(tenant_id, event))
        except TransactWriteError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def _watch(self, tenant_id: str, message_id: str, watch_at: float | None) -> list[Any]:
        """Put the message on the scheduler's index at watch_at, or take it off."""
        m = self._m.message
        if watch_at is None:
            return [m.due_shard.remove(), m.due_at.remove()]
        return [m.due_shard.set(due_shard(tenant_id, message_id)), m.due_at.set(watch_at)]

    # -- scheduling -------------------------------------------------------------------------

    def due_messages(self, shard: str, until: float, limit: int) -> list[MessageState]:
        """Messages on the index partition `shard` to look at by `until`, soonest first."""
        m = self._m.message
        items = m.by_due.query(shard, m.due_at <= until, limit=limit)
        return [self._to_state(item) for item in items]

    def take_due(self, state: MessageState, watch_at: float) -> bool:
        """Move a due message's watch on to watch_at (on its due shard, a held one too) as it
        is queued again under its ticket; False when it changed since it was read."""
        m = self._m.message
        try:
            m(state.tenant_id, state.id).update(
                actions=[
                    m.due_shard.set(due_shard(state.tenant_id, state.id)),
                    m.due_at.set(watch_at),
                ],
                condition=(m.ticket == state.ticket) & (m.due_at == state.due_at),
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def hold(
        self, tenant_id: str, message_id: str, ticket: str, new_ticket: str, now: float
    ) -> bool:
        """Keep a message of a suspended tenant or batch aside until activation."""
        m = self._m.message
        try:
            m(tenant_id, message_id).update(
                actions=[
                    m.ticket.set(new_ticket),
                    m.due_shard.set(held_shard(tenant_id)),
                    m.due_at.set(now),
                    m.updated_at.set(now),
                ],
                condition=(m.ticket == ticket) & self._unowned(now),
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def held_messages(self, tenant_id: str, limit: int = 1000) -> list[MessageState]:
        m = self._m.message
        items = m.by_due.query(held_shard(tenant_id), limit=limit)
        return [self._to_state(item) for item in items]

    def _unowned(self, now: float) -> Any:
        """Waiting, or left by a sender whose lease ran out."""
        m = self._m.message
        return m.status.is_in(*(s.value for s in WAITING_STATUSES)) | (
            (m.status == MessageStatus.SENDING.value) & (m.lease_until < now)
        )

    def finish_attempt(self, outcome: AttemptOutcome) -> None:
        """Record the outcome of the attempt holding its claim token, with its events (and
        the rate-limit slots it gives back), in one transaction; StaleWrite when that attempt
        no longer owns the message."""
        if self.finish_many([outcome]):
            raise StaleWrite(outcome.message_id)

    def finish_many(self, outcomes: list[AttemptOutcome]) -> set[int]:
        """Record these outcomes (of distinct messages) in as few transactions as they fit
        in; the positions of those whose attempt no longer owns its message (stale: nothing
        of theirs is written). A stale one cancels its transaction, which is written again
        without it, so the others are never held up by it."""
        stale: set[int] = set()
        for group in self._outcome_groups(outcomes):
            pending = group
            while pending:
                try:
                    self._write_outcomes([outcomes[i] for i in pending])
                    break
                except TransactWriteError as failure:
                    if not is_condition_failure(failure):
                        raise
                    refused = {pending[i] for i in failed_items(failure) if i < len(pending)}
                    if not refused:  # no reasons to tell which: one by one
                        stale |= {i for i in pending if not self._write_alone(outcomes[i])}
                        break
                    stale |= refused
                    pending = [i for i in pending if i not in refused]
        return stale

    def _write_alone(self, outcome: AttemptOutcome) -> bool:
        try:
            self._write_outcomes([outcome])
        except TransactWriteError as failure:
            if is_condition_failure(failure):
                return False
            raise
        return True

    def _outcome_groups(self, outcomes: list[AttemptOutcome]) -> list[list[int]]:
        groups: list[list[int]] = []
        items = _TRANSACTION_ITEMS
        for position, outcome in enumerate(outcomes):
            weight = 1 + len(outcome.events) + len(outcome.release)
            if items + weight > _TRANSACTION_ITEMS:
                groups.append([])
                items = 0
            groups[-1].append(position)
            items += weight
        return groups

    def _write_outcomes(self, outcomes: list[AttemptOutcome]) -> None:
        m = self._m.message
        counter = self._m.counter
        given_back: dict[str, Counter[int]] = {}
        for outcome in outcomes:
            for given in outcome.release:
                given_back.setdefault(given.key, Counter())[given.bucket] += 1
        with self._transaction() as tx:
            for outcome in outcomes:
                condition = (m.status == MessageStatus.SENDING.value) & (
                    m.claim_token == outcome.claim_token
                )
                tx.update(
                    m(outcome.tenant_id, outcome.message_id),
                    actions=self._outcome_actions(outcome),
                    condition=condition,
                )
            for outcome in outcomes:
                for event in outcome.events:
                    tx.save(self._from_event(outcome.tenant_id, event))
            for key, buckets in given_back.items():
                # Unconditional, and no new version: a lower count is safe for every
                # sender's decision. The item exists (its slot still counts, and items
                # outlive their last counted send); the sub-bucket might not, if a sender
                # whose clock runs ahead removed it as expired: it then reads -1, which
                # no count takes below zero.
                actions = []
                for number, sends in buckets.items():
                    bucket = counter.buckets[str(number)]
                    actions.append(bucket.set((bucket | 0) - sends))
                tx.update(counter(key), actions=actions)

    def _outcome_actions(self, outcome: AttemptOutcome) -> list[Any]:
        m = self._m.message
        now = outcome.now
        actions = [
            m.status.set(outcome.status.value),
            m.updated_at.set(now),
            m.lease_until.remove(),
            *self._watch(outcome.tenant_id, outcome.message_id, outcome.watch_at),
        ]
        match outcome.result:
            case Sent(refused=refused):
                actions += [m.sent_ts.set(now), m.deferred_ts.remove(), m.error.remove()]
                if refused:
                    actions.append(m.refused.set(refused))
            case Failed(error=error):
                actions += [m.error_ts.set(now), m.error.set(error), m.deferred_ts.remove()]
            case Retry(error=error, due_ts=due_ts, new_ticket=ticket, retries=retries):
                actions += [m.deferred_ts.set(due_ts), m.ticket.set(ticket), m.error.set(error)]
                actions.append(m.retries.set(retries))
            case HandedBack(due_ts=due_ts, new_ticket=ticket):
                actions += [m.deferred_ts.set(due_ts), m.ticket.set(ticket)]
        return actions

    # -- listing ----------------------------------------------------------------------------

    def list_states(self, tenant_id: str | None) -> list[MessageState]:
        items: Iterator[Any] = (
            self._m.message.query(tenant_id) if tenant_id is not None else self._m.message.scan()
        )
        return [self._to_state(item) for item in items]

    def get_payloads(self, tenant_id: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {key: body.payload for key, body in self.get_bodies(tenant_id, ids).items()}

    def events_by_message(self, tenant_id: str) -> dict[str, list[MessageEvent]]:
        events: dict[str, list[MessageEvent]] = {}
        for item in self._m.event.query(tenant_id):
            events.setdefault(item.message_id, []).append(self._to_event(item))
        return events

    # -- housekeeping -----------------------------------------------------------------------

    def count_active(self, tenant_id: str, batch_code: str | None = None) -> int:
        """Messages not yet sent or failed, of the tenant (and batch, when given)."""
        m = self._m.message
        condition = m.status.is_in(*(s.value for s in (*WAITING_STATUSES, MessageStatus.SENDING)))
        if batch_code is not None:
            condition = condition & (m.batch_code == batch_code)
        return sum(1 for _ in m.query(tenant_id, filter_condition=condition))

    def delete_message(self, tenant_id: str, message_id: str, now: float) -> DeleteOutcome:
        """Remove a message that no sender holds; its reference, if queued, then finds
        nothing and is dropped, so a waiting message is cancelled."""
        m = self._m.message
        not_in_flight = (m.status != MessageStatus.SENDING.value) | (m.lease_until < now)
        body = self._body_pointer(tenant_id, message_id)
        try:
            with self._transaction() as tx:
                tx.delete(m(tenant_id, message_id), condition=m.id.exists() & not_in_flight)
                tx.delete(self._m.body(tenant_id, message_id))
        except TransactWriteError as error:
            if not is_condition_failure(error):
                raise
            return "in_flight" if self.get_state(tenant_id, message_id) else "not_found"
        self._delete_payload(body)
        return "removed"

    def finished_before(self, tenant_id: str, before_ts: float) -> list[MessageState]:
        m = self._m.message
        condition = m.status.is_in(*(s.value for s in FINAL_STATUSES)) & (m.updated_at < before_ts)
        return [self._to_state(item) for item in m.query(tenant_id, filter_condition=condition)]

    def remove_finished(self, tenant_id: str, message_id: str, event_ids: list[str]) -> bool:
        """Remove a finished message with its events, only if it is still finished."""
        m = self._m.message
        body = self._body_pointer(tenant_id, message_id)
        try:
            with self._transaction() as tx:
                tx.delete(
                    m(tenant_id, message_id),
                    condition=m.status.is_in(*(s.value for s in FINAL_STATUSES)),
                )
                tx.delete(self._m.body(tenant_id, message_id))
        except TransactWriteError as error:
            if is_condition_failure(error):
                return False
            raise
        self._delete_payload(body)
        with self._m.event.batch_write() as batch:
            for event_id in event_ids:
                batch.delete(self._m.event(tenant_id, event_id))
        return True

    def _body_pointer(self, tenant_id: str, message_id: str) -> str | None:
        try:
            item = self._m.body.get(tenant_id, message_id, attributes_to_get=["s3_key"])
        except self._m.body.DoesNotExist:
            return None
        return item.s3_key or None

    def _delete_payload(self, key: str | None) -> None:
        if key and self._payloads is not None:
            self._payloads.delete(key)

    # -- mapping ----------------------------------------------------------------------------

    def _from_state(self, state: MessageState) -> Any:
        return self._m.message(
            state.tenant_id,
            state.id,
            status=state.status.value,
            priority=int(state.priority),
            ticket=state.ticket,
            created_at=state.created_at,
            updated_at=state.updated_at,
            account_id=state.account_id,
            batch_code=state.batch_code,
            deferred_ts=state.deferred_ts,
            sent_ts=state.sent_ts,
            error_ts=state.error_ts,
            error=state.error,
            reported_ts=state.reported_ts,
            attempts=state.attempts,
            retries=state.retries,
            lease_until=state.lease_until,
            claim_token=state.claim_token,
            body_version=state.body_version,
            due_shard=state.due_shard,
            due_at=state.due_at,
        )

    @staticmethod
    def _to_state(item: Any) -> MessageState:
        return MessageState(
            tenant_id=item.tenant_id,
            id=item.id,
            status=MessageStatus(item.status),
            priority=Priority(int(item.priority)),
            ticket=item.ticket,
            created_at=float(item.created_at),
            updated_at=float(item.updated_at),
            account_id=item.account_id,
            batch_code=item.batch_code,
            deferred_ts=item.deferred_ts,
            sent_ts=item.sent_ts,
            error_ts=item.error_ts,
            error=item.error,
            reported_ts=item.reported_ts,
            attempts=int(item.attempts or 0),
            retries=int(item.retries or 0),
            lease_until=item.lease_until,
            claim_token=item.claim_token,
            body_version=item.body_version,
            refused=dict(item.refused) if item.refused else None,
            due_shard=item.due_shard,
            due_at=item.due_at,
        )

    def _from_event(self, tenant_id: str, event: MessageEvent) -> Any:
        return self._m.event(
            tenant_id,
            event.event_id,
            message_id=event.message_id,
            event_type=event.event_type.value,
            event_ts=event.event_ts,
            description=event.description,
            metadata=event.metadata or None,
            reported_ts=event.reported_ts,
            unreported=tenant_id if event.reported_ts is None else None,
        )

    @staticmethod
    def _to_event(item: Any) -> MessageEvent:
        return MessageEvent(
            event_id=item.event_id,
            message_id=item.message_id,
            event_type=EventType(item.event_type),
            event_ts=float(item.event_ts),
            description=item.description,
            metadata=dict(item.metadata or {}),
            reported_ts=item.reported_ts,
        )
