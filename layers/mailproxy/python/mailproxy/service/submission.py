"""POST /commands/add-messages: store each message, then queue a reference to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mailproxy.auth import WRONG_TENANT, Principal, Unauthorized
from mailproxy.domain.account import StoredAccount
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import (
    BadRequest,
    FieldProblem,
    InvalidRequest,
    PayloadTooLarge,
    StaleWrite,
)
from mailproxy.domain.message import MAX_MESSAGES_PER_REQUEST, AddMessagesRequest, Message
from mailproxy.domain.priority import DEFAULT_PRIORITY, Priority
from mailproxy.domain.record import MessageEvent, MessageState, event_id_for
from mailproxy.domain.status import EventType, MessageStatus
from mailproxy.domain.submission import Accept, QueuedState, Reject, plan_submission
from mailproxy.outbound_http import UrlPolicy, url_problem
from mailproxy.queueing import Enqueue, Reference

# A stored payload must fit in one DynamoDB item (400 KB) with room for its keys; larger
# messages need the S3 payload store of the delivery engine.
MAX_STORED_PAYLOAD_BYTES = 350 * 1024


@dataclass(frozen=True)
class SubmissionPolicy:
    """What this deployment allows in tenant-supplied attachment locations."""

    url_policy: UrlPolicy = field(default_factory=UrlPolicy)
    s3_buckets: frozenset[str] = frozenset()


class SubmissionStore(Protocol):
    def get_account(self, tenant_id: str, account_id: str) -> StoredAccount | None: ...
    def tenants_with_account(self, account_id: str) -> list[str]: ...
    def get_states(self, tenant_id: str, ids: list[str]) -> dict[str, MessageState]: ...
    def save_submission(
        self,
        state: MessageState,
        payload: dict[str, Any],
        expected_ticket: str | None,
        event: MessageEvent | None = None,
    ) -> None: ...


class Queues(Protocol):
    def send(self, items: list[Enqueue]) -> None: ...


@dataclass
class SubmissionResult:
    queued: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)

    def reject(self, message_id: str, reason: str) -> None:
        self.rejected.append({"id": message_id, "reason": reason})


def add_messages(
    request: AddMessagesRequest,
    caller: Principal,
    store: SubmissionStore,
    queues: Queues,
    clock: Clock,
    new_ticket: Callable[[], str],
    policy: SubmissionPolicy,
) -> SubmissionResult:
    """Accept what can be accepted; BadRequest when nothing could be queued."""
    if len(request.messages) > MAX_MESSAGES_PER_REQUEST:
        raise BadRequest(
            f"Too many messages: {len(request.messages)} (at most {MAX_MESSAGES_PER_REQUEST})"
        )
    _check_attachment_sources(request.messages, policy)
    _check_sizes(request.messages)
    default_priority = (
        Priority.parse(request.default_priority)
        if request.default_priority is not None
        else DEFAULT_PRIORITY
    )
    tenant_ids = _resolve_tenants(request.messages, caller, store)
    now = clock()
    result = SubmissionResult()
    to_queue: list[Enqueue] = []
    by_tenant: dict[str, list[Message]] = {}
    for message, tenant_id in zip(request.messages, tenant_ids, strict=True):
        by_tenant.setdefault(tenant_id, []).append(message)
    for tenant_id, messages in by_tenant.items():
        existing = store.get_states(tenant_id, [m.id for m in messages])
        for message in _last_of_each_id(messages):
            outcome = _submit_one(
                tenant_id,
                message,
                existing.get(message.id),
                default_priority,
                store,
                now,
                new_ticket,
            )
            if isinstance(outcome, str):
                result.reject(message.id, outcome)
            else:
                result.queued += 1
                if outcome is not None:
                    to_queue.append(outcome)
    if to_queue:
        # A reference that fails to queue leaves its message stored and pending; the
        # scheduler's recovery pass finds such messages and queues them again.
        queues.send(to_queue)
    if result.queued == 0 and result.rejected:
        raise BadRequest({"error": "No messages could be queued", "rejected": result.rejected})
    return result


def _last_of_each_id(messages: list[Message]) -> list[Message]:
    """Within one request, a repeated id replaces the earlier one, as a later request would."""
    latest = {message.id: message for message in messages}
    return list(latest.values())


def _submit_one(
    tenant_id: str,
    message: Message,
    existing: MessageState | None,
    default_priority: Priority,
    store: SubmissionStore,
    now: float,
    new_ticket: Callable[[], str],
) -> Enqueue | str | None:
    """The reference to queue (None: the stored one keeps its place), or a rejection reason."""
    priority = message.effective_priority(default_priority)
    queued_state = (
        QueuedState(existing.status, existing.priority, existing.ticket, existing.deferred_ts)
        if existing is not None
        else None
    )
    plan = plan_submission(queued_state, priority, message.deferred_ts, now)
    if isinstance(plan, Reject):
        return plan.reason
    account_problem = _account_problem(tenant_id, message, store)
    ticket = new_ticket() if plan.enqueue or existing is None else existing.ticket
    state = MessageState(
        tenant_id=tenant_id,
        id=message.id,
        status=plan.status if account_problem is None else MessageStatus.ERROR,
        priority=priority,
        ticket=ticket,
        created_at=existing.created_at if existing is not None else now,
        updated_at=now,
        account_id=message.account_id,
        batch_code=message.batch_code,
        deferred_ts=plan.due_ts,
        error_ts=now if account_problem is not None else None,
        error=account_problem,
    )
    event = (
        MessageEvent(
            event_id=event_id_for(now, message.id, 0, EventType.ERROR),
            message_id=message.id,
            event_type=EventType.ERROR,
            event_ts=now,
            description=account_problem,
        )
        if account_problem is not None
        else None
    )
    payload = message.as_submitted() | {"tenant_id": tenant_id}
    try:
        store.save_submission(
            state, payload, existing.ticket if existing is not None else None, event
        )
    except StaleWrite:
        return "changed by another request while this one ran; submit it again"
    if account_problem is not None:
        return account_problem
    if not isinstance(plan, Accept) or not plan.enqueue:
        return None
    return Enqueue(Reference(tenant_id, message.id, ticket), priority, plan.delay_seconds)


def _account_problem(tenant_id: str, message: Message, store: SubmissionStore) -> str | None:
    if message.account_id is None:
        return "account_id is required"
    if store.get_account(tenant_id, message.account_id) is None:
        return f"Account '{message.account_id}' not found for tenant '{tenant_id}'"
    return None


def _resolve_tenants(
    messages: list[Message], caller: Principal, store: SubmissionStore
) -> list[str]:
    """The tenant of each message; the whole request is refused (422) if one is unknowable
    or outside the caller's scope."""
    problems: list[FieldProblem] = []
    tenants: list[str] = []
    owners_by_account: dict[str, list[str]] = {}
    for index, message in enumerate(messages):
        loc = ("body", "messages", index, "tenant_id")
        tenant_id = message.tenant_id
        if tenant_id is None and caller.tenant_id is not None:
            tenant_id = caller.tenant_id
        if tenant_id is None:
            if message.account_id is None:
                problems.append(FieldProblem(loc, "tenant_id is required without account_id"))
                tenants.append("")
                continue
            if message.account_id not in owners_by_account:
                owners_by_account[message.account_id] = store.tenants_with_account(
                    message.account_id
                )
            owners = owners_by_account[message.account_id]
            if len(owners) != 1:
                problems.append(
                    FieldProblem(
                        loc,
                        f"tenant_id is required: {len(owners)} tenants have an account "
                        f"'{message.account_id}'",
                    )
                )
                tenants.append("")
                continue
            tenant_id = owners[0]
        if caller.tenant_id is not None and tenant_id != caller.tenant_id:
            raise Unauthorized(WRONG_TENANT)
        tenants.append(tenant_id)
    if problems:
        raise InvalidRequest(problems)
    return tenants


def _check_attachment_sources(messages: list[Message], policy: SubmissionPolicy) -> None:
    """URL and S3 attachments only from where this deployment allows; the URL guard checks
    again, after DNS, when the sender fetches."""
    problems: list[FieldProblem] = []
    for index, message in enumerate(messages):
        for position, attachment in enumerate(message.attachments or []):
            loc = ("body", "messages", index, "attachments", position, "storage_path")
            mode = attachment.resolved_fetch_mode
            if mode == "http_url":
                problem = url_problem(attachment.storage_path, policy.url_policy)
                if problem:
                    problems.append(FieldProblem(loc, problem))
            elif mode == "s3":
                bucket = attachment.storage_path.removeprefix("s3://").split("/", 1)[0]
                if bucket not in policy.s3_buckets:
                    problems.append(
                        FieldProblem(loc, f"bucket '{bucket}' is not allowed for attachments")
                    )
    if problems:
        raise InvalidRequest(problems)


def _check_sizes(messages: list[Message]) -> None:
    for message in messages:
        size = len(json.dumps(message.as_submitted()).encode())
        if size > MAX_STORED_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"Message '{message.id}' is {size} bytes with its inline attachments; "
                f"the limit is {MAX_STORED_PAYLOAD_BYTES} bytes"
            )
