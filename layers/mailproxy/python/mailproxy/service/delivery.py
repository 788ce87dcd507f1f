"""Queued references, delivered: claim (with the account's rate-limit slots), send, record
the outcome; retry, defer or hand on what cannot go now.

Rate limits: each invocation reads an account's window items once and keeps them; a claim
takes its slots with writes that hold only while those items are as read, and a sender that
finds them changed (another sender took a slot meanwhile) reads them again and decides
again, a few times at most.

One owner at a time: a message is sent only by the sender whose claim succeeded, and its
outcome is written only with that claim's token. A redelivered or superseded reference claims
nothing. The one window no store can close is SMTP's own (the connection lost after the data,
or a sender gone between the server's 250 and the write): that is recorded as `ambiguous`.

In parallel: a batch goes out in waves. A wave holds up to `max_connections` references of
each account, each delivered on a thread (and an SMTP connection) of its own, so the SMTP
waits of a wave overlap; the next wave starts when the last one is done, if there is time
left for it. Within one invocation an account's claims are made one at a time (each sees the
window items the previous one left: no race between siblings), and its sends run side by side.
"""

from __future__ import annotations

import contextvars
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

from mailproxy.chunking import chunks
from mailproxy.domain.account import Account, StoredAccount
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import AmbiguousDelivery, DeliveryError, StaleWrite
from mailproxy.domain.metrics import Count, Counts
from mailproxy.domain.ports import (
    AttemptOutcome,
    AttemptResult,
    BatchClaimed,
    Claimed,
    ClaimRequest,
    ClaimResult,
    CountersChanged,
    Failed,
    HandedBack,
    NotClaimable,
    Retry,
    Sent,
    StoredBody,
)
from mailproxy.domain.rate_limit import (
    CHARGE_AHEAD_SECONDS,
    DeferUntil,
    LimitReached,
    SlotFree,
    SlotRelease,
    SlotWrite,
    Window,
    WindowCounts,
    WindowFull,
    after_release,
    combine_writes,
    give_back,
    may_charge_ahead,
    over_limit,
    plan_send,
    windows_for,
)
from mailproxy.domain.record import MessageEvent, MessageState, event_id_for
from mailproxy.domain.retry import RETRY_DELAYS_SECONDS, Fail, after_failure
from mailproxy.domain.scheduling import ENQUEUE_CONFIRM_GRACE_SECONDS, needs_scheduler
from mailproxy.domain.status import WAITING_STATUSES, EventType, MessageStatus
from mailproxy.domain.submission import queue_delay
from mailproxy.domain.tenant import Tenant
from mailproxy.outbound_http import UrlPolicy
from mailproxy.queueing import Enqueue, Reference
from mailproxy.secret_box import account_context
from mailproxy.service.large_files import LargeFileAction, LargeFileSetup
from mailproxy.service.ports import DeliveryStore, Opener, Queues, Transport
from mailproxy.service.scheduling import release_message

_TAKEN_OVER = "A previous attempt may have delivered this message (its sender stopped)"
# Claims tried per reference when other senders keep changing the account's window items
# between this sender's read and its write; then the reference is handed on for a moment.
CLAIM_ATTEMPTS = 5
BUSY_RETRY_SECONDS = 1
# Items of one batch claim: its messages and the rate-limit items they charge (DynamoDB takes
# at most 100 in one transaction).
MAX_BATCH_CLAIM_ITEMS = 99
# A batch's outcomes are written together, but none waits longer than this to be written.
OUTCOMES_HELD_SECONDS = 2.0
_BUSY = "rate-limit counters busy (other senders took slots meanwhile)"
_NO_TIME = "not started: too little of this invocation's time left for another wave"


class Outcome(StrEnum):
    SENT = "sent"
    ERROR = "error"  # failed for good
    DEFERRED = "deferred"  # failed for now: retried later
    RATE_LIMITED = "rate_limited"  # deferred until a slot of its full window frees (not a retry)
    HELD = "held"  # its tenant or batch is suspended: kept aside until activation
    # Arrived before its due time, queued again for the rest; or lost the race for the rate
    # limit's items too often in a row, queued again for a moment.
    HANDED_ON = "handed_on"
    DROPPED = "dropped"  # finished, superseded or owned by another sender: nothing to do
    STALE = "stale"  # lost ownership while sending (lease expired); the new owner decides


if TYPE_CHECKING:
    from mailproxy.delivery.mime import Envelope, FetchedAttachment
    from mailproxy.domain.large_files import BodyNote
    from mailproxy.domain.message import Message

_COUNTED = {
    Outcome.SENT: Count.SENT,
    Outcome.ERROR: Count.ERRORS,
    Outcome.DEFERRED: Count.DEFERRED,
    Outcome.RATE_LIMITED: Count.RATE_LIMITED,
}


@dataclass(frozen=True)
class DeliveryContext:
    store: DeliveryStore
    transport: Transport
    queues: Queues
    clock: Clock
    lease_seconds: int
    new_ticket: Callable[[], str]
    secrets: Opener
    attachment_sources: AttachmentSources = field(default_factory=lambda: AttachmentSources())
    large_files: LargeFileSetup = field(default_factory=LargeFileSetup)
    # Told (message id, envelope recipients) just before a message is handed to SMTP.
    on_attempt: Callable[[str, list[str]], None] = lambda message_id, recipients: None
    # The instance's bounce_return_path: the envelope sender of a message that names none
    # (so bounces reach the bounce mailbox). Asked once per invocation.
    default_return_path: Callable[[], str | None] = lambda: None


@dataclass(frozen=True)
class AttachmentSources:
    """Where attachments may be fetched from in this deployment."""

    url_policy: UrlPolicy = field(default_factory=UrlPolicy)
    s3_buckets: frozenset[str] = frozenset()
    s3_client: Callable[[], Any] | None = None


@dataclass(frozen=True)
class OutcomeNote:
    """What a person reading the log wants to know of one attempt, beside its outcome."""

    recipients: tuple[str, ...] = ()
    account_id: str | None = None
    elapsed_ms: float | None = None
    reason: str | None = None
    until_ts: float | None = None

    def as_log_keys(self) -> dict[str, Any]:
        keys = {
            "recipients": list(self.recipients) or None,
            "via_account": self.account_id,
            "elapsed_ms": round(self.elapsed_ms, 1) if self.elapsed_ms is not None else None,
            "reason": self.reason,
            "until_ts": self.until_ts,
        }
        return {key: value for key, value in keys.items() if value is not None}


@dataclass
class Invocation:
    """One batch of references: their bodies read together, each account read once."""

    ctx: DeliveryContext
    bodies: dict[tuple[str, str], StoredBody] = field(default_factory=dict)
    accounts: dict[tuple[str, str], Account | None] = field(default_factory=dict)
    # Accounts as read with the batch, their passwords still sealed (opened on first use).
    stored_accounts: dict[tuple[str, str], StoredAccount | None] = field(default_factory=dict)
    tenants: dict[str, Tenant | None] = field(default_factory=dict)
    # What happened in this invocation, per (tenant, account): written once at its end.
    counts: Counts = field(default_factory=Counter)
    # Seconds from acceptance to send, of each message sent.
    send_delays: list[tuple[str, str, float]] = field(default_factory=list)
    # The last attempt's details per message id, for its log line.
    notes: dict[str, OutcomeNote] = field(default_factory=dict)
    # What the tenant's large_file_config did to a message's attachments, for the log.
    large_files: dict[str, list[LargeFileAction]] = field(default_factory=dict)
    # The rate-limit items, by key, as last read or written by this invocation: one read
    # per account and batch, whatever the number of its messages.
    window_counts: dict[str, WindowCounts] = field(default_factory=dict)
    # Claims made for the whole batch at once, by (tenant, message, ticket): the claim and
    # the slots it took.
    claimed_ahead: dict[tuple[str, str, str], tuple[Claimed, tuple[SlotFree, ...]]] = field(
        default_factory=dict
    )
    # Outcomes waiting to be written together at the end of the batch (when collecting).
    collecting_outcomes: bool = False
    outcomes_to_write: list[_PendingOutcome] = field(default_factory=list)
    # The threads of a wave share what is above: changes to it are made under this lock
    # (never held over I/O), and an account's claims under its own lock.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _claim_locks: dict[tuple[str, str], threading.Lock] = field(
        default_factory=dict, repr=False, compare=False
    )
    # The envelope sender of messages that give no return_path (None: their From).
    default_return_path: str | None = None
    # Held over the one read of a tenant or an account.
    _reading: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, reference: Reference, what: Count) -> None:
        with self._lock:
            self.counts[(reference.tenant_id, reference.account_id or "", what)] += 1

    def note(self, reference: Reference, note: OutcomeNote) -> None:
        with self._lock:
            self.notes[reference.message_id] = note

    def claim_lock(self, reference: Reference) -> threading.Lock:
        """Held over each claim of this reference's account in this invocation."""
        key = (reference.tenant_id, reference.account_id or "")
        with self._lock:
            return self._claim_locks.setdefault(key, threading.Lock())

    @classmethod
    def prepare(cls, ctx: DeliveryContext, references: list[Reference]) -> Invocation:
        """The batch's bodies, tenants and accounts, read together."""
        invocation = cls(ctx, default_return_path=ctx.default_return_path())
        tenant_ids = {reference.tenant_id for reference in references}
        account_keys = {
            (reference.tenant_id, reference.account_id)
            for reference in references
            if reference.account_id is not None
        }
        read = ctx.store.read_batch(
            tenant_ids, account_keys, {(r.tenant_id, r.message_id) for r in references}
        )
        invocation.bodies.update(read.bodies)
        invocation.tenants.update({tenant: read.tenants.get(tenant) for tenant in tenant_ids})
        invocation.stored_accounts.update({key: read.accounts.get(key) for key in account_keys})
        return invocation

    def body(self, reference: Reference) -> StoredBody | None:
        key = (reference.tenant_id, reference.message_id)
        if key not in self.bodies:
            found = self.ctx.store.get_bodies(reference.tenant_id, [reference.message_id])
            if reference.message_id in found:
                self.bodies[key] = found[reference.message_id]
        return self.bodies.get(key)

    def tenant(self, tenant_id: str) -> Tenant | None:
        if tenant_id not in self.tenants:
            with self._reading:  # once, whichever thread of a wave asks first
                if tenant_id not in self.tenants:
                    self.tenants[tenant_id] = self.ctx.store.get_tenant(tenant_id)
        return self.tenants[tenant_id]

    def account(self, tenant_id: str, account_id: str | None) -> Account | None:
        if account_id is None:
            return None
        key = (tenant_id, account_id)
        if key not in self.accounts:
            with self._reading:
                if key not in self.accounts:
                    if key in self.stored_accounts:
                        stored = self.stored_accounts[key]
                    else:
                        stored = self.ctx.store.get_account(tenant_id, account_id)
                    self.accounts[key] = self._with_password(tenant_id, stored) if stored else None
        return self.accounts[key]

    def limit_items(self, keys: list[str], reread: Iterable[str] = ()) -> list[WindowCounts]:
        """The window items of these keys: as kept, except those not read yet and `reread`."""
        with self._lock:
            wanted = set(reread) | {key for key in keys if key not in self.window_counts}
        if wanted:
            read = self.ctx.store.get_window_counts(wanted)
            with self._lock:
                self.window_counts.update(read)
        with self._lock:
            return [self.window_counts[key] for key in keys]

    def remember(self, states: Iterable[WindowCounts]) -> None:
        with self._lock:
            for state in states:
                self.window_counts[state.key] = state

    def gave_back(self, releases: Iterable[SlotRelease]) -> None:
        with self._lock:
            for release in releases:
                if release.key in self.window_counts:
                    state = self.window_counts[release.key]
                    self.window_counts[release.key] = after_release(state, release)

    def _with_password(self, tenant_id: str, stored: StoredAccount) -> Account:
        account = stored.account
        if not stored.sealed_password:
            return account
        password = self.ctx.secrets.open(
            stored.sealed_password, account_context(tenant_id, account.id)
        )
        return account.model_copy(update={"password": SecretStr(password)})


@dataclass(frozen=True)
class _PendingOutcome:
    reference: Reference
    write: AttemptOutcome
    outcome: Outcome
    # What the invocation learns once the write is done (the slots it gave back).
    on_written: Callable[[], None] | None = None

    def written(self) -> None:
        if self.on_written is not None:
            self.on_written()


def deliver(reference: Reference, invocation: Invocation) -> Outcome:
    """One reference, alone: its claim, its send, its outcome written at once."""
    outcome = _deliver(reference, invocation)
    _count(reference, outcome, invocation)
    return outcome


Result = Outcome | Exception


def deliver_batch(
    references: Sequence[Reference],
    invocation: Invocation,
    time_for_a_wave: Callable[[], bool] = lambda: True,
) -> list[Result]:
    """A batch of references, in few writes and overlapping SMTP waits: the messages that
    may go now claimed together (with their slots), sent in waves (the module's docstring),
    and their outcomes written together. What the batch writes could not do is done per
    message, so one message that changed meanwhile never holds up the rest. The outcome of
    each reference, or the exception its delivery raised (its record alone fails), in the
    order given.

    A wave starts only while `time_for_a_wave()` says so: the references of the waves that
    do not start are queued again at once (a claimed one gives its claim and slots back,
    rather than wait for a takeover that would call it ambiguous). Outcomes are written
    after the wave in which they have waited OUTCOMES_HELD_SECONDS, and at the end, so an
    invocation stopped short loses few."""
    claim_batch(references, invocation)
    invocation.collecting_outcomes = True
    results: dict[int, Result] = {}
    changed: dict[int, Result] = {}
    waves = _waves(references, invocation)
    widest = max((len(wave) for wave in waves), default=0)
    executor = None
    if widest > 1:
        # Imported here, not at cold start: a batch of one message per account needs no thread.
        from concurrent.futures import ThreadPoolExecutor

        executor = ThreadPoolExecutor(max_workers=widest, thread_name_prefix="sender-wave")
    last_written = invocation.ctx.clock()
    try:
        for number, wave in enumerate(waves):
            if not time_for_a_wave():
                for left in waves[number:]:
                    for index in left:
                        results[index] = _attempted(_not_started, references[index], invocation)
                break
            if executor is None or len(wave) == 1:
                for index in wave:
                    results[index] = _attempted(_deliver, references[index], invocation)
            else:
                # Each in a copy of the invocation's context (what its caller set for it there).
                futures = {
                    index: executor.submit(
                        contextvars.copy_context().run,
                        _attempted,
                        _deliver,
                        references[index],
                        invocation,
                    )
                    for index in wave
                }
                for index, future in futures.items():
                    results[index] = future.result()
            now = invocation.ctx.clock()
            if now - last_written >= OUTCOMES_HELD_SECONDS:
                changed |= write_outcomes(invocation)
                last_written = now
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
        invocation.collecting_outcomes = False
    changed |= write_outcomes(invocation)
    ordered: list[Result] = []
    for index, reference in enumerate(references):
        result = changed.get(id(reference), results[index])
        if isinstance(result, Outcome):
            _count(reference, result, invocation)
        ordered.append(result)
    return ordered


def _not_started(reference: Reference, invocation: Invocation) -> Outcome:
    """No time left for its wave: a message claimed with the batch gives its claim back; any
    other is queued again as it is."""
    with invocation._lock:
        ahead = invocation.claimed_ahead.pop(_ahead_key(reference), None)
    if ahead is None:
        return hand_on_unstarted(reference, invocation)
    claimed, slots = ahead
    invocation.note(reference, OutcomeNote(reason=_NO_TIME))
    return _claimed_attempt(reference, invocation, slots).hand_back(claimed)


def _claimed_attempt(
    reference: Reference, invocation: Invocation, slots: tuple[SlotFree, ...]
) -> _Attempt:
    """The attempt of a message claimed with its batch (its body was read to claim it)."""
    body = invocation.bodies[(reference.tenant_id, reference.message_id)]
    account = invocation.account(reference.tenant_id, reference.account_id)
    windows = windows_for(account) if account is not None else []
    ctx = invocation.ctx
    return _Attempt(reference, ctx, body, account, windows, ctx.clock(), invocation, slots)


def _count(reference: Reference, outcome: Outcome, invocation: Invocation) -> None:
    counted = _COUNTED.get(outcome)
    if counted is not None:
        invocation.count(reference, counted)


def write_outcomes(invocation: Invocation) -> dict[int, Outcome | Exception]:
    """Write the collected outcomes together. What changes for a reference (by identity: a
    batch may hold one message twice): STALE when its attempt no longer owns the message,
    or the error its write met."""
    with invocation._lock:
        pending, invocation.outcomes_to_write = invocation.outcomes_to_write, []
    if not pending:
        return {}
    store = invocation.ctx.store
    changed: dict[int, Outcome | Exception] = {}
    try:
        stale = store.finish_many([item.write for item in pending])
    except Exception:
        # Not a stale one (those are left out): one by one, so the error fails only its own.
        stale = set()
        for position, item in enumerate(pending):
            try:
                stale |= {position} if store.finish_many([item.write]) else set()
            except Exception as error:
                changed[id(item.reference)] = error
    for position, item in enumerate(pending):
        if position in stale:
            changed[id(item.reference)] = Outcome.STALE
        elif id(item.reference) not in changed:
            item.written()
    return changed


def claim_batch(references: Sequence[Reference], invocation: Invocation) -> None:
    """Claim, in one transaction, every message of the batch that may go now: each waiting
    under its reference's ticket, with a slot in each of its account's windows as this
    invocation reads them. What is not claimed here (a message suspended, over a limit, not
    claimable, a duplicate, or the batch refused too often) takes the per-message path."""
    ctx = invocation.ctx
    now = ctx.clock()
    candidates: list[Reference] = []
    seen: set[tuple[str, str]] = set()
    for reference in references:
        key = (reference.tenant_id, reference.message_id)
        body = invocation.body(reference)
        tenant = invocation.tenant(reference.tenant_id)
        if key in seen or body is None:
            continue
        if tenant is not None and tenant.is_suspended(body.payload.get("batch_code")):
            continue
        seen.add(key)
        candidates.append(reference)
    reread: set[str] = set()
    for _ in range(CLAIM_ATTEMPTS):
        if not candidates:
            return
        planned, charges, after = _plan_batch(candidates, invocation, now, reread)
        if not planned:
            return
        requests = [
            ClaimRequest(
                reference.tenant_id,
                reference.message_id,
                reference.ticket,
                invocation.bodies[(reference.tenant_id, reference.message_id)].version,
                ctx.new_ticket(),
            )
            for reference, _ in planned
        ]
        result = ctx.store.claim_many(
            requests,
            [combine_writes(writes) for writes in charges.values()],
            now=now,
            lease_seconds=ctx.lease_seconds,
        )
        if isinstance(result, BatchClaimed):
            invocation.remember(after.values())
            for request, (reference, slots) in zip(requests, planned, strict=True):
                claimed = Claimed(request.claim_token)
                invocation.claimed_ahead[_ahead_key(reference)] = (claimed, slots)
            return
        refused = {id(planned[i][0]) for i in result.not_claimable}
        candidates = [reference for reference in candidates if id(reference) not in refused]
        reread = set(result.changed_keys)


def _plan_batch(
    candidates: list[Reference], invocation: Invocation, now: float, reread: set[str]
) -> tuple[
    list[tuple[Reference, tuple[SlotFree, ...]]],
    dict[str, list[SlotWrite]],
    dict[str, WindowCounts],
]:
    """The slots each candidate takes, decided in order on the window items as this
    invocation knows them (`reread`: read again first); a candidate whose account has no
    room left is not planned (its own path defers or fails it). The writes per item, and
    the items as they will be once all are taken."""
    planned: list[tuple[Reference, tuple[SlotFree, ...]]] = []
    charges: dict[str, list[SlotWrite]] = {}
    after: dict[str, WindowCounts] = {}
    for reference in candidates:
        try:
            account = invocation.account(reference.tenant_id, reference.account_id)
        # E.g. a password that does not open: its own path fails it alone, and logs why.
        except Exception:  # noqa: S112
            continue
        windows = windows_for(account) if account is not None else []
        if not may_charge_ahead(windows):
            continue
        keys = [w.counter_key(reference.tenant_id, reference.account_id or "") for w in windows]
        states = [
            after.get(state.key, state)
            for state in invocation.limit_items(keys, reread & set(keys))
        ]
        reread -= set(keys)
        plan = plan_send(windows, states, now, charge_at=now + CHARGE_AHEAD_SECONDS)
        if isinstance(plan, LimitReached):
            continue
        if len(planned) + len(charges.keys() | {s.write.key for s in plan.slots}) >= (
            MAX_BATCH_CLAIM_ITEMS
        ):
            break
        for slot in plan.slots:
            charges.setdefault(slot.write.key, []).append(slot.write)
            after[slot.write.key] = slot.after
        planned.append((reference, plan.slots))
    return planned, charges, after


def _ahead_key(reference: Reference) -> tuple[str, str, str]:
    return (reference.tenant_id, reference.message_id, reference.ticket)


def _attempted(
    step: Callable[[Reference, Invocation], Outcome], reference: Reference, invocation: Invocation
) -> Result:
    try:
        return step(reference, invocation)
    except Exception as error:  # the reference's own failure: its record alone fails
        return error


def _waves(references: Sequence[Reference], invocation: Invocation) -> list[list[int]]:
    """Indexes of the references, wave by wave: the n-th wave holds the n-th slice of
    `max_connections` references of every account, in the order given."""
    by_account: dict[tuple[str, str | None], list[int]] = {}
    for index, reference in enumerate(references):
        by_account.setdefault((reference.tenant_id, reference.account_id), []).append(index)
    waves: list[list[int]] = []
    for (tenant_id, account_id), indexes in by_account.items():
        width = _connections(invocation, tenant_id, account_id)
        for number, chunk in enumerate(chunks(indexes, width)):
            if number == len(waves):
                waves.append([])
            waves[number].extend(chunk)
    return [sorted(wave) for wave in waves]


def _connections(invocation: Invocation, tenant_id: str, account_id: str | None) -> int:
    """The account's max_connections; one for a reference whose account cannot be had (its
    delivery fails on its own, as it would alone)."""
    try:
        account = invocation.account(tenant_id, account_id)
    except Exception:
        return 1
    return account.max_connections if account is not None else 1


def hand_on_unstarted(reference: Reference, invocation: Invocation) -> Outcome:
    """Not attempted (no time left for it): queued again at once, to be delivered by the
    next invocation, as it would have been by this one."""
    ctx = invocation.ctx
    invocation.note(reference, OutcomeNote(reason=_NO_TIME))
    now = ctx.clock()
    return _hand_on(reference, ctx, now, now)


def _hand_on(reference: Reference, ctx: DeliveryContext, due_ts: float, now: float) -> Outcome:
    ticket = ctx.new_ticket()
    watch_at, queue_next = _next_reference(ctx, reference.handed_on(ticket), due_ts, now)
    moved = ctx.store.requeue_waiting(
        reference.tenant_id,
        reference.message_id,
        reference.ticket,
        ticket,
        now=now,
        watch_at=watch_at,
    )
    if moved:
        queue_next()
    return Outcome.HANDED_ON if moved else Outcome.DROPPED


def _next_reference(
    ctx: DeliveryContext, reference: Reference, due_ts: float, now: float
) -> tuple[float, Callable[[], None]]:
    """Where the message waits on the scheduler's watch, and how its next reference is
    queued once the write that moves its ticket is done: written first, queued after. A
    reference queued first could reach a sender before the ticket moved and be dropped as
    stale, leaving the message to wait for a reference that never comes. The watch brings
    it back if the queueing never happens (the sender died between): the scheduler queues it
    under that ticket. Later than a queue can hold it, the scheduler alone queues it."""
    if needs_scheduler(due_ts, now):
        return due_ts, lambda: None

    def queue_next() -> None:
        ctx.queues.send([Enqueue(reference, queue_delay(due_ts, now))])

    return max(due_ts, now) + ENQUEUE_CONFIRM_GRACE_SECONDS, queue_next


def _release_if_activated_meanwhile(
    reference: Reference, batch_code: str | None, ctx: DeliveryContext
) -> None:
    """An activation between this sender's tenant read and its hold found nothing held to
    release; reading the tenant again after the hold closes that gap. When both release it,
    the second finds a moved ticket and queues nothing that would be sent."""
    tenant = ctx.store.get_tenant(reference.tenant_id)
    if tenant is not None and tenant.is_suspended(batch_code):
        return
    state = ctx.store.get_state(reference.tenant_id, reference.message_id)
    if state is not None:
        release_message(state, ctx.store, ctx.queues, ctx.clock())


def _deliver(reference: Reference, invocation: Invocation) -> Outcome:
    ctx = invocation.ctx
    now = ctx.clock()
    body = invocation.body(reference)
    if body is None:
        return Outcome.DROPPED  # deleted (cancelled) since it was queued
    with invocation._lock:
        ahead = invocation.claimed_ahead.pop(_ahead_key(reference), None)
    if ahead is not None:
        claim, slots = ahead
        return _claimed_attempt(reference, invocation, slots).send(claim)
    tenant = invocation.tenant(reference.tenant_id)
    batch_code = body.payload.get("batch_code")
    if tenant is not None and tenant.is_suspended(batch_code):
        held = ctx.store.hold(
            reference.tenant_id, reference.message_id, reference.ticket, ctx.new_ticket(), now
        )
        if not held:
            return Outcome.DROPPED
        _release_if_activated_meanwhile(reference, batch_code, ctx)
        return Outcome.HELD
    account = invocation.account(reference.tenant_id, reference.account_id)
    windows = windows_for(account) if account is not None else []
    attempt = _Attempt(reference, ctx, body, account, windows, now, invocation)
    result = attempt.claim()
    if isinstance(result, LimitReached):
        return attempt.over_limit(result.full)
    if isinstance(result, _Busy):
        return attempt.busy()
    claimed = result if isinstance(result, Claimed) else attempt.after_refused_claim()
    if isinstance(claimed, Outcome):
        return claimed
    return attempt.send(claimed)


@dataclass(frozen=True)
class _Busy:
    """Claims kept meeting window items other senders had just changed."""


@dataclass
class _Attempt:
    reference: Reference
    ctx: DeliveryContext
    body: StoredBody
    account: Account | None
    windows: list[Window]
    now: float
    invocation: Invocation
    # The slots this attempt's claim took: given back if the send fails for now.
    taken: tuple[SlotFree, ...] = ()
    # The message as read by a claim that found a window full and the message not claimable.
    refused: MessageState | None = None

    def claim(
        self, after_expired_lease: bool = False, known: MessageState | None = None
    ) -> Claimed | NotClaimable | LimitReached | _Busy:
        """Claim the message with a slot in each of its account's windows, decided on the
        items as this invocation knows them; items another sender changed meanwhile are read
        again and the decision made again (the failed transaction wrote nothing, so no slot
        is ever taken twice). `known`: the message as just read, if it was."""
        with self.invocation.claim_lock(self.reference):
            return self._claim_with_slots(after_expired_lease, known)

    def _claim_with_slots(
        self, after_expired_lease: bool, known: MessageState | None
    ) -> Claimed | NotClaimable | LimitReached | _Busy:
        ref = self.reference
        keys = [w.counter_key(ref.tenant_id, ref.account_id or "") for w in self.windows]
        reread: set[str] = set()
        fresh: set[str] = set()  # read during this claim
        for attempt in range(CLAIM_ATTEMPTS):
            if attempt:
                self.now = self.ctx.clock()
            fresh |= reread | {key for key in keys if key not in self.invocation.window_counts}
            states = self.invocation.limit_items(keys, reread)
            plan = plan_send(self.windows, states, self.now)
            if isinstance(plan, LimitReached):
                unsure = self._unconfirmed(plan.full, keys, fresh)
                if unsure:
                    reread = unsure  # a failure is for good: not on what may be out of date
                    continue
                # No claim is tried, so what its condition would have said of the message is
                # asked here: an early or stale reference is not deferred or failed again.
                state = known or self.ctx.store.get_state(ref.tenant_id, ref.message_id)
                if not self._claimable(state, after_expired_lease):
                    self.refused = state
                    return NotClaimable()
                return plan
            result = self._claim(after_expired_lease, [slot.write for slot in plan.slots])
            if isinstance(result, CountersChanged):
                reread = set(result.keys)
                continue
            if isinstance(result, Claimed):
                self.invocation.remember(slot.after for slot in plan.slots)
                self.taken = plan.slots
            return result
        return _Busy()

    def _unconfirmed(
        self, full: tuple[WindowFull, ...], keys: list[str], fresh: set[str]
    ) -> set[str]:
        """Full windows known from an earlier read, when the account rejects over a limit:
        what was read may since have lost a slot given back, and a rejection is final (a
        deferral from such a read is at worst a little long, and is not read again)."""
        if self.account is None or self.account.limit_behavior != "reject":
            return set()
        by_window = dict(zip(self.windows, keys, strict=True))
        return {by_window[found.window] for found in full} - fresh

    def _claimable(self, state: MessageState | None, after_expired_lease: bool) -> bool:
        """The condition of the store's claim, on the message as read."""
        if (
            state is None
            or state.ticket != self.reference.ticket
            or state.body_version != self.body.version
        ):
            return False
        if after_expired_lease:
            return (
                state.status is MessageStatus.SENDING
                and state.lease_until is not None
                and state.lease_until < self.now
            )
        return state.status in WAITING_STATUSES and (
            state.deferred_ts is None or state.deferred_ts <= self.now
        )

    def _claim(self, after_expired_lease: bool, charges: list[SlotWrite]) -> ClaimResult:
        return self.ctx.store.claim(
            self.reference.tenant_id,
            self.reference.message_id,
            self.reference.ticket,
            self.body.version,
            now=self.now,
            lease_seconds=self.ctx.lease_seconds,
            claim_token=self.ctx.new_ticket(),
            charges=charges,
            after_expired_lease=after_expired_lease,
        )

    def busy(self) -> Outcome:
        """Other senders kept taking slots between this one's reads and writes: try again
        in a moment rather than spin (not a deferral, not a retry)."""
        self.invocation.note(self.reference, OutcomeNote(reason=_BUSY))
        return self._hand_on(self.now + BUSY_RETRY_SECONDS)

    def after_refused_claim(self) -> Claimed | Outcome:
        """Why the claim was refused, and what follows: hand on an early reference, take
        over from a sender whose lease ran out, or drop a reference that is not live."""
        ref = self.reference
        state = self.refused or self.ctx.store.get_state(ref.tenant_id, ref.message_id)
        if state is None or state.ticket != ref.ticket:
            return Outcome.DROPPED
        if (
            state.status in WAITING_STATUSES
            and state.deferred_ts is not None
            and state.deferred_ts > self.now
        ):
            return self._hand_on(state.deferred_ts)
        if (
            state.status is MessageStatus.SENDING
            and state.lease_until is not None
            and state.lease_until < self.now
            and state.body_version == self.body.version
        ):
            taken = self.claim(after_expired_lease=True, known=state)
            if isinstance(taken, Claimed):
                return taken
            if isinstance(taken, LimitReached):
                return self.over_limit(taken.full, taken_over=True)
            if isinstance(taken, _Busy):
                return self.busy()
        return Outcome.DROPPED

    def hand_back(self, claimed: Claimed) -> Outcome:
        """Give the claim back unsent, with its slots, and queue the message again now."""
        ticket = self.ctx.new_ticket()
        watch_at, queue_next = _next_reference(
            self.ctx, self.reference.handed_on(ticket), self.now, self.now
        )
        releases = [
            given
            for slot in self.taken
            if (given := give_back(slot.window, slot.write, self.now)) is not None
        ]

        def written() -> None:
            self.invocation.gave_back(releases)
            queue_next()

        return self._finish(
            claimed,
            Outcome.HANDED_ON,
            self.now,
            [],
            HandedBack(self.now, ticket, releases, watch_at),
            on_written=written,
        )

    def _hand_on(self, due_ts: float) -> Outcome:
        return _hand_on(self.reference, self.ctx, due_ts, self.now)

    def over_limit(self, full: tuple[WindowFull, ...], taken_over: bool = False) -> Outcome:
        """No slot now: wait until one frees up, or fail, as the account says. Taking over
        from a sender whose lease ran out, the message may already have gone: said so
        first."""
        ref = self.reference
        assert self.account is not None
        decision = over_limit(self.account, full)
        events = [self._ambiguous(self.now, _TAKEN_OVER, "lease")] if taken_over else []
        if not isinstance(decision, DeferUntil):
            self.invocation.note(ref, OutcomeNote(reason=decision.reason))
            failed = self.ctx.store.fail_waiting(
                ref.tenant_id,
                ref.message_id,
                ref.ticket,
                now=self.now,
                events=[
                    *events,
                    self._event(EventType.ERROR, self.now, decision.reason, "rate"),
                ],
            )
            return Outcome.ERROR if failed else Outcome.DROPPED
        self.invocation.note(ref, OutcomeNote(reason=decision.reason, until_ts=decision.due_ts))
        ticket = self.ctx.new_ticket()
        watch_at, queue_next = _next_reference(
            self.ctx, ref.handed_on(ticket), decision.due_ts, self.now
        )
        moved = self.ctx.store.requeue_waiting(
            ref.tenant_id,
            ref.message_id,
            ref.ticket,
            ticket,
            now=self.now,
            watch_at=watch_at,
            due_ts=decision.due_ts,
            events=[
                *events,
                self._event(
                    EventType.DEFERRED,
                    self.now,
                    decision.reason,
                    "rate",
                    {"deferred_ts": decision.due_ts, "deferred_reason": decision.reason},
                ),
            ],
        )
        if moved:
            queue_next()
        return Outcome.RATE_LIMITED if moved else Outcome.DROPPED

    def send(self, claimed: Claimed) -> Outcome:
        events: list[MessageEvent] = []
        if claimed.after_expired_lease:
            events.append(self._ambiguous(self.now, _TAKEN_OVER, "lease"))
            if self.account is not None and self.account.on_ambiguous == "fail":
                return self._fail(claimed, f"Delivery uncertain: {_TAKEN_OVER}", events)
        try:
            account, envelope = self._prepare()
            self.ctx.on_attempt(self.reference.message_id, list(envelope.recipients))
            started = self.ctx.clock()
            refused = self.ctx.transport.send(
                account, envelope.mail_from, envelope.recipients, envelope.data
            )
        except DeliveryError as error:
            return self._after_failure(claimed, error, events)
        done = self.ctx.clock()
        self.invocation.note(
            self.reference,
            OutcomeNote(
                recipients=tuple(envelope.recipients),
                account_id=account.id,
                elapsed_ms=(done - started) * 1000,
            ),
        )
        if self.reference.submitted_at is not None:
            self.invocation.send_delays.append(
                (
                    self.reference.tenant_id,
                    self.reference.account_id or "",
                    done - self.reference.submitted_at,
                )
            )
        metadata: dict[str, Any] = {"refused": refused} if refused else {}
        events.append(self._event(EventType.SENT, done, None, claimed.claim_token, metadata))
        return self._finish(claimed, Outcome.SENT, done, events, Sent(refused or None))

    def _prepare(self) -> tuple[Account, Envelope]:
        # Imported on the first send, not at cold start: MIME building and the message model
        # are the sender's heaviest modules, and a batch of redeliveries may never need them.
        from mailproxy.delivery.mime import build_envelope
        from mailproxy.domain.message import Message

        try:
            message = Message.model_validate(self.body.payload)
        except ValidationError as error:
            raise DeliveryError(f"Stored message is invalid: {error}", temporary=False) from error
        if self.account is None:
            raise DeliveryError(
                f"Account '{self.reference.account_id}' not found for tenant "
                f"'{self.reference.tenant_id}'",
                temporary=False,
            )
        attachments = self._fetch(message) if message.attachments else []
        note = None
        if attachments:
            attachments, note = self._apply_large_file_config(attachments)
        return self.account, build_envelope(
            self.reference.tenant_id,
            message,
            attachments,
            self.ctx.clock(),
            note,
            default_return_path=self.invocation.default_return_path,
        )

    def _apply_large_file_config(
        self, attachments: list[FetchedAttachment]
    ) -> tuple[list[FetchedAttachment], BodyNote | None]:
        tenant = self.invocation.tenant(self.reference.tenant_id)
        config = tenant.large_file_config if tenant is not None else None
        if config is None or not config.enabled:
            return attachments, None
        from mailproxy.service.large_files import apply_large_file_config

        applied = apply_large_file_config(
            self.reference.tenant_id,
            self.reference.message_id,
            attachments,
            config,
            self.ctx.large_files,
            self.ctx.clock(),
        )
        if applied.actions:
            self.invocation.large_files[self.reference.message_id] = applied.actions
        return applied.attachments, applied.note

    def _fetch(self, message: Message) -> list[FetchedAttachment]:
        # Imported here: most messages have no attachment to fetch.
        from mailproxy.delivery.attachments import (
            EndpointAuth,
            FetchContext,
            fetch_all,
            tenant_endpoint_auth,
            tenant_endpoint_url,
            uses_endpoint,
        )

        sources = self.ctx.attachment_sources
        endpoint_url: str | None = None
        endpoint_auth = EndpointAuth()
        if uses_endpoint(message.attachments or []):
            # The tenant as this invocation read it with the batch: not read again.
            tenant = self.invocation.tenant(self.reference.tenant_id)
            if tenant is not None:
                endpoint_url = tenant_endpoint_url(tenant)
                endpoint_auth = tenant_endpoint_auth(tenant, self.ctx.secrets.open)
        context = FetchContext(
            url_policy=sources.url_policy,
            s3_buckets=sources.s3_buckets,
            s3_client=sources.s3_client,
            endpoint_url=endpoint_url,
            endpoint_auth=endpoint_auth,
        )
        return fetch_all(message.attachments or [], context)

    def _after_failure(
        self, claimed: Claimed, error: DeliveryError, events: list[MessageEvent]
    ) -> Outcome:
        now = self.ctx.clock()
        if isinstance(error, AmbiguousDelivery):
            events.append(self._ambiguous(now, error.text, claimed.claim_token))
            if self.account is not None and self.account.on_ambiguous == "fail":
                return self._fail(claimed, f"Delivery uncertain: {error.text}", events)
        schedule = (
            tuple(self.account.retry_schedule)
            if self.account is not None and self.account.retry_schedule
            else RETRY_DELAYS_SECONDS
        )
        decision = after_failure(error, self.reference.retries, now, schedule)
        if isinstance(decision, Fail):
            return self._fail(claimed, decision.reason, events)
        self.invocation.note(
            self.reference, OutcomeNote(reason=decision.reason, until_ts=decision.due_ts)
        )
        ticket = self.ctx.new_ticket()
        retries = self.reference.retries + 1
        # A send that failed for now gives its slots back; one that may have reached the
        # server (ambiguous) keeps them: the limit is on what may have been sent.
        releases = (
            []
            if isinstance(error, AmbiguousDelivery)
            else [
                given
                for slot in self.taken
                if (given := give_back(slot.window, slot.write, now)) is not None
            ]
        )
        watch_at, queue_next = _next_reference(
            self.ctx, self.reference.handed_on(ticket, retries), decision.due_ts, now
        )

        def written() -> None:
            self.invocation.gave_back(releases)
            queue_next()

        events.append(
            self._event(
                EventType.DEFERRED,
                now,
                decision.reason,
                claimed.claim_token,
                {
                    "deferred_ts": int(decision.due_ts),
                    "deferred_reason": decision.reason,
                    "retry": retries,
                },
            )
        )
        return self._finish(
            claimed,
            Outcome.DEFERRED,
            now,
            events,
            Retry(decision.reason, decision.due_ts, ticket, retries, releases, watch_at),
            on_written=written,
        )

    def _fail(self, claimed: Claimed, reason: str, events: list[MessageEvent]) -> Outcome:
        now = self.ctx.clock()
        self.invocation.note(self.reference, OutcomeNote(reason=reason))
        events.append(self._event(EventType.ERROR, now, reason, claimed.claim_token))
        return self._finish(claimed, Outcome.ERROR, now, events, Failed(reason))

    def _finish(
        self,
        claimed: Claimed,
        outcome: Outcome,
        now: float,
        events: list[MessageEvent],
        result: AttemptResult,
        on_written: Callable[[], None] | None = None,
    ) -> Outcome:
        ref = self.reference
        write = AttemptOutcome(
            ref.tenant_id, ref.message_id, claimed.claim_token, now, events, result
        )
        pending = _PendingOutcome(ref, write, outcome, on_written)
        if self.invocation.collecting_outcomes:
            # Written with the batch's others (write_outcomes), which may still find it stale.
            with self.invocation._lock:
                self.invocation.outcomes_to_write.append(pending)
            return outcome
        try:
            self.ctx.store.finish_attempt(write)
        except StaleWrite:
            return Outcome.STALE
        pending.written()
        return outcome

    def _ambiguous(self, at: float, description: str, attempt: str) -> MessageEvent:
        self.invocation.count(self.reference, Count.AMBIGUOUS)
        return self._event(EventType.AMBIGUOUS, at, description, attempt)

    def _event(
        self,
        event_type: EventType,
        at: float,
        description: str | None,
        attempt: str,
        metadata: dict[str, Any] | None = None,
    ) -> MessageEvent:
        return MessageEvent(
            event_id=event_id_for(at, self.reference.message_id, attempt, event_type),
            message_id=self.reference.message_id,
            event_type=event_type,
            event_ts=at,
            description=description,
            metadata=metadata or {},
        )
