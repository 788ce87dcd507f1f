"""One queued reference, delivered: claim, send, record the outcome (or retry later)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pydantic import SecretStr, ValidationError

from mailproxy.delivery.attachments import fetch_all
from mailproxy.delivery.mime import build_envelope
from mailproxy.domain.account import Account, StoredAccount
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import DeliveryError, StaleWrite
from mailproxy.domain.message import Message
from mailproxy.domain.record import MessageEvent, MessageState, event_id_for
from mailproxy.domain.retry import Fail, after_failure
from mailproxy.domain.status import EventType, MessageStatus
from mailproxy.domain.submission import queue_delay
from mailproxy.queueing import Enqueue, Reference
from mailproxy.secret_box import account_context


class DeliveryStore(Protocol):
    def claim(
        self, tenant_id: str, message_id: str, ticket: str, now: float, lease_seconds: int
    ) -> MessageState | None: ...
    def get_state(self, tenant_id: str, message_id: str) -> MessageState | None: ...
    def get_payload(self, tenant_id: str, message_id: str) -> dict[str, Any] | None: ...
    def get_account(self, tenant_id: str, account_id: str) -> StoredAccount | None: ...
    def hand_on(
        self, tenant_id: str, message_id: str, old_ticket: str, new_ticket: str
    ) -> bool: ...
    def finish_attempt(
        self,
        claimed: MessageState,
        *,
        status: MessageStatus,
        now: float,
        event: MessageEvent,
        error: str | None = None,
        due_ts: float | None = None,
        new_ticket: str | None = None,
        retries: int | None = None,
    ) -> None: ...


class Transport(Protocol):
    def send(
        self, account: Account, envelope_from: str, recipients: list[str], message: bytes
    ) -> dict[str, str]: ...


class Queues(Protocol):
    def send(self, items: list[Enqueue]) -> None: ...


class Opener(Protocol):
    def open(self, sealed: str, context: dict[str, str]) -> str: ...


class Outcome(StrEnum):
    SENT = "sent"
    FAILED = "error"
    RETRY = "deferred"
    HANDED_ON = "handed_on"  # arrived before its due time; queued again for the rest
    DROPPED = "dropped"  # finished, superseded or owned by another sender: nothing to do
    STALE = "stale"  # lost ownership while sending (lease expired); the new owner decides


@dataclass(frozen=True)
class DeliveryContext:
    store: DeliveryStore
    transport: Transport
    queues: Queues
    clock: Clock
    lease_seconds: int
    new_ticket: Callable[[], str]
    secrets: Opener


def deliver(reference: Reference, ctx: DeliveryContext) -> Outcome:
    now = ctx.clock()
    claimed = ctx.store.claim(
        reference.tenant_id, reference.message_id, reference.ticket, now, ctx.lease_seconds
    )
    if claimed is None:
        return _not_claimed(reference, ctx, now)
    try:
        account, envelope = _prepare(claimed, ctx)
        refused = ctx.transport.send(
            account, envelope.mail_from, envelope.recipients, envelope.data
        )
    except DeliveryError as error:
        return _after_failure(claimed, error, ctx)
    done = ctx.clock()
    metadata: dict[str, Any] = {"refused": refused} if refused else {}
    return _finish(
        claimed,
        ctx,
        Outcome.SENT,
        status=MessageStatus.SENT,
        now=done,
        event=_event(claimed, EventType.SENT, done, None, metadata),
    )


def _not_claimed(reference: Reference, ctx: DeliveryContext, now: float) -> Outcome:
    state = ctx.store.get_state(reference.tenant_id, reference.message_id)
    early = (
        state is not None
        and state.ticket == reference.ticket
        and state.status in (MessageStatus.PENDING, MessageStatus.SCHEDULED, MessageStatus.DEFERRED)
        and state.deferred_ts is not None
        and state.deferred_ts > now
    )
    if not early or state is None:
        return Outcome.DROPPED
    ticket = ctx.new_ticket()
    # Queue first, then move the ticket: if the second step fails, the new reference is
    # simply stale, while the old one is redelivered and tries again.
    ctx.queues.send(
        [
            Enqueue(
                Reference(state.tenant_id, state.id, ticket),
                state.priority,
                queue_delay(state.deferred_ts, now),
            )
        ]
    )
    moved = ctx.store.hand_on(state.tenant_id, state.id, reference.ticket, ticket)
    return Outcome.HANDED_ON if moved else Outcome.DROPPED


def _prepare(claimed: MessageState, ctx: DeliveryContext) -> tuple[Account, Any]:
    payload = ctx.store.get_payload(claimed.tenant_id, claimed.id)
    if payload is None:
        raise DeliveryError("Message payload is missing", temporary=False)
    try:
        message = Message.model_validate(payload)
    except ValidationError as error:
        raise DeliveryError(f"Stored message is invalid: {error}", temporary=False) from error
    stored = (
        ctx.store.get_account(claimed.tenant_id, claimed.account_id) if claimed.account_id else None
    )
    if stored is None:
        raise DeliveryError(
            f"Account '{claimed.account_id}' not found for tenant '{claimed.tenant_id}'",
            temporary=False,
        )
    account = stored.account
    if stored.sealed_password:
        password = ctx.secrets.open(
            stored.sealed_password, account_context(claimed.tenant_id, account.id)
        )
        account = account.model_copy(update={"password": SecretStr(password)})
    attachments = fetch_all(message.attachments or [])
    return account, build_envelope(claimed.tenant_id, message, attachments, ctx.clock())


def _after_failure(claimed: MessageState, error: DeliveryError, ctx: DeliveryContext) -> Outcome:
    now = ctx.clock()
    decision = after_failure(error, claimed.retries, now)
    if isinstance(decision, Fail):
        return _finish(
            claimed,
            ctx,
            Outcome.FAILED,
            status=MessageStatus.ERROR,
            now=now,
            event=_event(claimed, EventType.ERROR, now, decision.reason),
            error=decision.reason,
        )
    ticket = ctx.new_ticket()
    ctx.queues.send(
        [
            Enqueue(
                Reference(claimed.tenant_id, claimed.id, ticket),
                claimed.priority,
                queue_delay(decision.due_ts, now),
            )
        ]
    )
    return _finish(
        claimed,
        ctx,
        Outcome.RETRY,
        status=MessageStatus.DEFERRED,
        now=now,
        event=_event(
            claimed,
            EventType.DEFERRED,
            now,
            decision.reason,
            {"deferred_ts": int(decision.due_ts), "retry": claimed.retries + 1},
        ),
        error=decision.reason,
        due_ts=decision.due_ts,
        new_ticket=ticket,
        retries=claimed.retries + 1,
    )


def _finish(
    claimed: MessageState, ctx: DeliveryContext, outcome: Outcome, **changes: Any
) -> Outcome:
    try:
        ctx.store.finish_attempt(claimed, **changes)
    except StaleWrite:
        return Outcome.STALE
    return outcome


def _event(
    claimed: MessageState,
    event_type: EventType,
    now: float,
    description: str | None,
    metadata: dict[str, Any] | None = None,
) -> MessageEvent:
    return MessageEvent(
        event_id=event_id_for(now, claimed.id, claimed.attempts, event_type),
        message_id=claimed.id,
        event_type=event_type,
        event_ts=now,
        description=description,
        metadata=metadata or {},
    )
