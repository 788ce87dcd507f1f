"""The priority queues: what a queued reference looks like, and how references are sent."""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from mailproxy.chunking import chunks
from mailproxy.domain.priority import Priority

_SEND_BATCH_LIMIT = 10


class QueueError(Exception):
    """Some references could not be queued."""

    def __init__(self, failed: list[Reference]) -> None:
        super().__init__(f"{len(failed)} reference(s) could not be queued")
        self.failed = failed


def new_ticket() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Reference:
    """What travels on a queue: which message, and the ticket that makes this reference the
    live one. The message itself stays in DynamoDB, so no size limit is ever met here.

    It also carries what the sender must know before it claims (the account whose limits
    the claim charges, the priority to queue a retry on, the retries made so far): every
    change of those gives the message a new ticket, so a reference whose ticket still
    matches carries them as they are.
    """

    tenant_id: str
    message_id: str
    ticket: str
    account_id: str | None = None
    priority: Priority = Priority.MEDIUM
    retries: int = 0
    # When the message was first accepted: the sender measures the time to its send.
    submitted_at: float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "tenant_id": self.tenant_id,
                "message_id": self.message_id,
                "ticket": self.ticket,
                "account_id": self.account_id,
                "priority": int(self.priority),
                "retries": self.retries,
                "submitted_at": self.submitted_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Reference:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("a reference is a JSON object")
        if not raw.get("tenant_id") or not raw.get("message_id") or not raw.get("ticket"):
            raise ValueError("a reference names a tenant, a message and a ticket")
        account = raw.get("account_id")
        return cls(
            tenant_id=str(raw["tenant_id"]),
            message_id=str(raw["message_id"]),
            ticket=str(raw["ticket"]),
            account_id=str(account) if account is not None else None,
            priority=Priority(int(raw.get("priority", Priority.MEDIUM))),
            retries=int(raw.get("retries", 0)),
            submitted_at=float(raw["submitted_at"]) if raw.get("submitted_at") else None,
        )

    def handed_on(self, ticket: str, retries: int | None = None) -> Reference:
        """The same message under a new ticket (and, after a failure, a new retry count)."""
        return replace(self, ticket=ticket, retries=self.retries if retries is None else retries)


@dataclass(frozen=True)
class Enqueue:
    reference: Reference
    delay_seconds: int = 0

    @property
    def priority(self) -> Priority:
        return self.reference.priority


class SqsQueues:
    def __init__(self, queue_url: Callable[[str], str], sqs_client: Any) -> None:
        self._queue_url = queue_url
        self._sqs = sqs_client

    def send(self, items: Iterable[Enqueue]) -> None:
        by_priority: dict[Priority, list[Enqueue]] = defaultdict(list)
        for item in items:
            by_priority[item.priority].append(item)
        failed: list[Reference] = []
        for priority, batch in by_priority.items():
            url = self._queue_url(priority.label)
            for chunk in chunks(batch, _SEND_BATCH_LIMIT):
                response = self._sqs.send_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {
                            "Id": str(index),
                            "MessageBody": item.reference.to_json(),
                            "DelaySeconds": item.delay_seconds,
                        }
                        for index, item in enumerate(chunk)
                    ],
                )
                failed += [
                    chunk[int(entry["Id"])].reference for entry in response.get("Failed", [])
                ]
        if failed:
            raise QueueError(failed)


class Wakeups:
    """Signals to the reporter: these tenants have news (or, forced, report now)."""

    def __init__(self, queue_url: str, sqs_client: Any) -> None:
        self._queue_url = queue_url
        self._sqs = sqs_client

    def wake(self, tenant_ids: Iterable[str] | None, force: bool = False) -> None:
        body: dict[str, Any] = {
            "tenants": sorted(set(tenant_ids)) if tenant_ids is not None else None
        }
        if force:
            body["force"] = True
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(body))
