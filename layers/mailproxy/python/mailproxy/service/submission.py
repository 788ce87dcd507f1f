"""POST /commands/add-messages: store each message, then queue a reference to it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailproxy.auth import WRONG_TENANT, Principal, Unauthorized
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import (
    BadRequest,
    FieldProblem,
    InvalidRequest,
    PayloadTooLarge,
)
from mailproxy.domain.limits import MAX_BODY_BYTES
from mailproxy.domain.message import MAX_MESSAGES_PER_REQUEST, AddMessagesRequest, Message
from mailproxy.domain.metrics import Count, Counts
from mailproxy.domain.ports import SubmissionWrite
from mailproxy.domain.priority import DEFAULT_PRIORITY, Priority
from mailproxy.domain.record import MessageEvent, MessageState, event_id_for
from mailproxy.domain.s3_uri import split_s3_uri
from mailproxy.domain.scheduling import ENQUEUE_CONFIRM_GRACE_SECONDS, due_shard
from mailproxy.domain.status import EventType, MessageStatus
from mailproxy.domain.submission import (
    REASON_ALREADY_SENT,
    Accept,
    QueuedState,
    Reject,
    plan_submission,
)
from mailproxy.outbound_http import UrlPolicy, url_problem
from mailproxy.queueing import Enqueue, Reference
from mailproxy.service.ports import Queues, SubmissionStore

# One message with its inline attachments, as stored: what the API can carry (a larger
# payload goes to the S3 payload bucket, so no DynamoDB item limit applies).
MAX_STORED_PAYLOAD_BYTES = MAX_BODY_BYTES


@dataclass(frozen=True)
class SubmissionPolicy:
    """What this deployment allows in tenant-supplied attachment locations."""

    url_policy: UrlPolicy = field(default_factory=UrlPolicy)
    s3_buckets: frozenset[str] = frozenset()


@dataclass
class SubmissionResult:
    queued: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)

    def reject(self, message_id: str, reason: str) -> None:
        self.rejected.append({"id": message_id, "reason": reason})


@dataclass(frozen=True)
class _Planned:
    write: SubmissionWrite
    enqueue: Enqueue | None  # None: the stored reference keeps its place in line
    rejection: str | None = None  # recorded, but refused (an unknown account)


def add_messages(
    request: AddMessagesRequest,
    caller: Principal,
    store: SubmissionStore,
    queues: Queues,
    clock: Clock,
    new_ticket: Callable[[], str],
    policy: SubmissionPolicy,
) -> SubmissionResult:
    """Accept what can be accepted; BadRequest when nothing could be queued.

    One batch read of what is stored, one transaction per group of messages, one queue
    call per ten references: a request of 50 messages costs a handful of AWS calls."""
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
    by_tenant: dict[str, list[Message]] = {}
    for message, tenant_id in zip(request.messages, tenant_ids, strict=True):
        by_tenant.setdefault(tenant_id, []).append(message)
    accounts = _AccountLookup(store)
    planned: list[_Planned] = []
    for tenant_id, messages in by_tenant.items():
        existing = store.get_states(tenant_id, [m.id for m in messages])
        for message in _last_of_each_id(messages):
            outcome = _plan_one(
                tenant_id,
                message,
                existing.get(message.id),
                default_priority,
                accounts,
                now,
                new_ticket,
            )
            if isinstance(outcome, str):
                result.reject(message.id, outcome)
            else:
                planned.append(outcome)
    stale = store.save_submissions([plan.write for plan in planned])
    to_queue: list[Enqueue] = []
    accepted: Counts = Counter()
    for plan in planned:
        message_id = plan.write.state.id
        if message_id in stale:
            result.reject(message_id, "changed by another request while this one ran; submit again")
        elif plan.rejection is not None:
            result.reject(message_id, plan.rejection)
        else:
            result.queued += 1
            if plan.enqueue is not None:
                to_queue.append(plan.enqueue)
            if plan.write.expected_ticket is None:
                state = plan.write.state
                accepted[(state.tenant_id, state.account_id or "", Count.SUBMITTED)] += 1
    if to_queue:
        # A reference that fails to queue leaves its message stored and on the scheduler's
        # index; the scheduler queues it again when its grace runs out.
        queues.send(to_queue)
        store.confirm_queued([item.reference for item in to_queue])
    if accepted:
        store.add_counts(accepted)
    # "Already sent" is a normal outcome of resubmitting (the original answers it with 200):
    # only a request that queued nothing and was refused for another reason is a 400.
    if result.queued == 0 and any(r["reason"] != REASON_ALREADY_SENT for r in result.rejected):
        raise BadRequest({"error": "No messages could be queued", "rejected": result.rejected})
    return result


class _AccountLookup:
    """Each account read once per request, however many messages name it."""

    def __init__(self, store: SubmissionStore) -> None:
        self._store = store
        self._known: dict[tuple[str, str], bool] = {}

    def exists(self, tenant_id: str, account_id: str) -> bool:
        key = (tenant_id, account_id)
        if key not in self._known:
            self._known[key] = self._store.get_account(tenant_id, account_id) is not None
        return self._known[key]


def _last_of_each_id(messages: list[Message]) -> list[Message]:
    """Within one request, a repeated id replaces the earlier one, as a later request would."""
    latest = {message.id: message for message in messages}
    return list(latest.values())


def _plan_one(
    tenant_id: str,
    message: Message,
    existing: MessageState | None,
    default_priority: Priority,
    accounts: _AccountLookup,
    now: float,
    new_ticket: Callable[[], str],
) -> _Planned | str:
    """What to write and queue for one message, or why it is rejected outright."""
    priority = message.effective_priority(default_priority)
    queued_state = (
        QueuedState(
            existing.status,
            existing.priority,
            existing.ticket,
            existing.deferred_ts,
            existing.account_id,
        )
        if existing is not None
        else None
    )
    plan = plan_submission(queued_state, priority, message.deferred_ts, now, message.account_id)
    if isinstance(plan, Reject):
        return plan.reason
    account_problem = _account_problem(tenant_id, message, accounts)
    ticket = existing.ticket if existing is not None and plan.keeps_ticket else new_ticket()
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
        body_version=new_ticket(),
        **_scheduler_watch(tenant_id, message.id, plan, account_problem is not None, now),
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
    write = SubmissionWrite(
        state,
        message.as_submitted() | {"tenant_id": tenant_id},
        existing.ticket if existing is not None else None,
        event,
    )
    if account_problem is not None:
        return _Planned(write, None, rejection=account_problem)
    enqueue = (
        Enqueue(
            Reference(
                tenant_id,
                message.id,
                ticket,
                message.account_id,
                priority,
                submitted_at=existing.created_at if existing is not None else now,
            ),
            plan.delay_seconds,
        )
        if isinstance(plan, Accept) and plan.enqueue
        else None
    )
    return _Planned(write, enqueue)


def _scheduler_watch(
    tenant_id: str, message_id: str, plan: Accept, failed: bool, now: float
) -> dict[str, Any]:
    """When the scheduler must look at the message: when it falls due (later than a queue
    can hold it), or, for one queued now, soon after, in case the queueing never happens."""
    if failed or (plan.keeps_ticket and not plan.enqueue):
        return {}
    due_at = now + ENQUEUE_CONFIRM_GRACE_SECONDS if plan.enqueue else plan.due_ts
    if due_at is None:
        return {}
    return {"due_shard": due_shard(tenant_id, message_id), "due_at": due_at}


def _account_problem(tenant_id: str, message: Message, accounts: _AccountLookup) -> str | None:
    if message.account_id is None:
        return "account_id is required"
    if not accounts.exists(tenant_id, message.account_id):
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
                bucket, _ = split_s3_uri(attachment.storage_path)
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
