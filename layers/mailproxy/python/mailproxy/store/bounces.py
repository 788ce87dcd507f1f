"""The bounce reader's store adapters: the message a notification is about (MessageLookup)
and its bounce event (BounceEvents), over the tables as the delivery path writes them.

No index was added for the reader: every lookup works from keys and tables that exist, so a
message costs the write path not one extra write unit (an index on the id alone, or on a
stored Message-ID, would be written for every message sent, to serve the few that bounce).
- by X-Genro-Mail-ID: the tenants are few (one Scan of their ids), and the id is unique within
  a tenant: one BatchGetItem of (tenant, id) for every tenant, messages and bodies together.
- by recipient, and by Message-ID: among the tenant's messages sent recently, which the
  events table lists in time order (its sort key starts with the event's time): each tenant's
  `sent` events of the last `recent_seconds` (7 days: what the reader looks back), newest
  first, at most RECENT_EVENTS_BUDGET of them read per tenant and run. Older messages, or a
  tenant sending more than that in the window, are beyond the last resort: the notification
  stays in the mailbox as unmatched (a person can look at it).
- the default Message-ID is a one-way hash of (tenant, id) (delivery/mime.py): it is checked
  against each recent candidate's hash, no body read; a client's own Message-ID is in the
  stored payload, read for the recent candidates. A payload stored in S3 (a large message) is
  not read: its recipients and client Message-ID count as unknown (the domain then decides
  on what else the notification says).
"""

from __future__ import annotations

import email.utils
import json
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from pynamodb.exceptions import PynamoDBException

from mailproxy.delivery.mime import message_id_digest
from mailproxy.domain.bounces import SentMessage
from mailproxy.domain.errors import StorageFailure
from mailproxy.domain.record import MessageEvent
from mailproxy.domain.status import EventType
from mailproxy.store.base import storage_failure, written_if_condition_held
from mailproxy.store.batch_reads import BatchReads

# Events read per tenant and run when looking for recent messages: a read budget (about
# RECENT_EVENTS_BUDGET / 10 read units, events being small).
RECENT_EVENTS_BUDGET = 5000
_PAGE = 500


def _addresses(*values: Any) -> tuple[str, ...]:
    """Lower-cased addresses of To, Cc, Bcc as stored (a list, or one comma-separated text)."""
    texts: list[str] = []
    for value in values:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            texts.extend(str(v) for v in value)
    return tuple(dict.fromkeys(addr.lower() for _, addr in email.utils.getaddresses(texts) if addr))


def _inline_payload(item: Any) -> dict[str, Any] | None:
    if item.payload_zlib is not None:
        return dict(json.loads(zlib.decompress(item.payload_zlib)))
    if item.payload is not None:
        return dict(item.payload)
    return None  # in S3, or gone


def _message_id_header(tenant_id: str, mail_id: str, payload: dict[str, Any] | None) -> str | None:
    """As delivery/mime.py's stable_message_id made it; None when the payload is unknown."""
    if payload is None:
        return None
    given = payload.get("message_id")
    if given:
        text = str(given).strip()
        return text if text.startswith("<") else f"<{text}>"
    sender = str(payload.get("from") or payload.get("from_addr") or "")
    domain = sender.rpartition("@")[2].strip(" >") or "mailproxy.invalid"
    return f"<{message_id_digest(tenant_id, mail_id)}@{domain}>"


class BounceRecords(BatchReads):
    # -- BounceEvents ---------------------------------------------------------------------

    def record_bounce(self, message: SentMessage, event: MessageEvent, dedupe_key: str) -> bool:
        """The event (unreported: the reporter sends it) and the key on the message's item,
        in one transaction, conditional on the key not being there yet. False when it was
        (or when the message is gone meanwhile: nothing to hang a bounce on)."""
        m, e = self._m.message, self._m.event

        def write() -> None:
            with self._transaction() as tx:
                tx.update(
                    m(message.tenant_id, message.id),
                    actions=[m.bounce_keys.add({dedupe_key})],
                    condition=m.id.exists() & ~m.bounce_keys.contains(dedupe_key),
                )
                tx.save(
                    self._from_event(message.tenant_id, event),
                    condition=e.event_id.does_not_exist(),
                )

        return written_if_condition_held(write)

    # -- MessageLookup's reads ------------------------------------------------------------

    def tenant_ids(self) -> list[str]:
        try:
            return sorted(item.id for item in self._m.tenant.scan(attributes_to_get=["id"]))
        except PynamoDBException as error:
            raise storage_failure(error) from error

    def sent_messages(self, keys: Iterable[tuple[str, str]]) -> list[SentMessage]:
        """The messages of these (tenant, id), with their recipients and Message-ID read from
        their bodies; one BatchGetItem over both tables per hundred keys."""
        m, b = self._m.message, self._m.body
        wanted = sorted(set(keys))
        request: list[tuple[Any, dict[str, Any]]] = []
        for tenant_id, mail_id in wanted:
            raw_key = {"tenant_id": {"S": tenant_id}, "id": {"S": mail_id}}
            request += [(m, raw_key), (b, dict(raw_key))]
        states: dict[tuple[str, str], Any] = {}
        payloads: dict[tuple[str, str], dict[str, Any] | None] = {}
        try:
            for model, item in self._batch_get(request):
                if model is m:
                    states[(item.tenant_id, item.id)] = item
                else:
                    payloads[(item.tenant_id, item.id)] = _inline_payload(item)
        except (PynamoDBException, RuntimeError) as error:
            raise StorageFailure(f"DynamoDB {error}") from error
        found = []
        for key in wanted:
            state = states.get(key)
            if state is None:
                continue
            payload = payloads.get(key)
            recipients = (
                _addresses(payload.get("to"), payload.get("cc"), payload.get("bcc"))
                if payload
                else ()
            )
            found.append(
                SentMessage(
                    tenant_id=key[0],
                    id=key[1],
                    message_id_header=_message_id_header(key[0], key[1], payload),
                    recipients=recipients,
                    sent_ts=float(state.sent_ts) if state.sent_ts is not None else None,
                )
            )
        return found

    def recently_sent(self, tenant_id: str, since: float, budget: int) -> list[str]:
        """Ids of the tenant's messages with a `sent` event since `since`, newest first; at
        most `budget` events read."""
        e = self._m.event
        ids: dict[str, None] = {}
        read = 0
        try:
            for item in e.query(
                tenant_id,
                e.event_id >= f"{int(since * 1000):013d}",
                scan_index_forward=False,
                page_size=min(_PAGE, budget),
                attributes_to_get=["message_id", "event_type"],
            ):
                read += 1
                if item.event_type == EventType.SENT.value:
                    ids[item.message_id] = None
                if read >= budget:
                    break
        except PynamoDBException as error:
            raise storage_failure(error) from error
        return list(ids)


class StoredMessageLookup:
    """MessageLookup (service/ports.py) for one run of the reader: what it reads of the
    recent messages is read once, for every notification of the run."""

    def __init__(
        self,
        store: BounceRecords,
        since: float,
        budget: int = RECENT_EVENTS_BUDGET,
    ) -> None:
        self._store = store
        self._since = since
        self._budget = budget
        self._tenants: list[str] | None = None
        self._recent_ids: list[tuple[str, str]] | None = None
        self._recent: list[SentMessage] | None = None

    def by_mail_id(self, mail_id: str) -> Sequence[SentMessage]:
        return self._store.sent_messages((t, mail_id) for t in self._tenant_ids())

    def by_message_id(self, message_id: str) -> Sequence[SentMessage]:
        # The default form first: its hash is checked against each recent (tenant, id),
        # with no body read; then a client's own Message-ID, in the recent bodies.
        local = message_id.strip("<>").partition("@")[0]
        hashed = [key for key in self._recent_keys() if message_id_digest(*key) == local]
        if hashed:
            found = self._store.sent_messages(hashed)
            return [s for s in found if s.message_id_header in (None, message_id)]
        return [s for s in self._recent_messages() if s.message_id_header == message_id]

    def by_recipient(self, recipient: str, since: float) -> Sequence[SentMessage]:
        address = recipient.lower()
        return [
            s
            for s in self._recent_messages()
            if address in s.recipients and (s.sent_ts is None or s.sent_ts >= since)
        ]

    def _tenant_ids(self) -> list[str]:
        if self._tenants is None:
            self._tenants = self._store.tenant_ids()
        return self._tenants

    def _recent_keys(self) -> list[tuple[str, str]]:
        if self._recent_ids is None:
            self._recent_ids = [
                (tenant_id, mail_id)
                for tenant_id in self._tenant_ids()
                for mail_id in self._store.recently_sent(tenant_id, self._since, self._budget)
            ]
        return self._recent_ids

    def _recent_messages(self) -> list[SentMessage]:
        if self._recent is None:
            self._recent = self._store.sent_messages(self._recent_keys())
        return self._recent
