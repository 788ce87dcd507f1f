"""The store: every read and write of tenants, accounts, messages and events.

Each write that changes a message's state is conditional on what the writer last saw (its
ticket or its claimed attempt), so a stale sender, a redelivered queue record or a racing
request can never overwrite a newer decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from mailproxy.config import ResourceNames
from mailproxy.domain.account import Account, StoredAccount
from mailproxy.domain.errors import StaleWrite
from mailproxy.domain.priority import Priority
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.status import WAITING_STATUSES, EventType, MessageStatus
from mailproxy.store.models import Models, bind_models

_CONDITION_FAILED = {"ConditionalCheckFailedException", "TransactionCanceledException"}
_BATCH_GET_LIMIT = 100


def _is_condition_failure(error: PutError | UpdateError | TransactWriteError) -> bool:
    return error.cause_response_code in _CONDITION_FAILED


class Store:
    def __init__(self, resources: ResourceNames) -> None:
        self._m: Models = bind_models(
            resources.table("tenants"),
            resources.table("accounts"),
            resources.table("messages"),
            resources.table("bodies"),
            resources.table("events"),
        )

    # -- accounts ---------------------------------------------------------------------------

    def put_account(self, account: Account, now: float) -> None:
        """Create or replace the account (upsert on tenant_id + id)."""
        assert account.tenant_id is not None
        try:
            created_at = self._m.account.get(account.tenant_id, account.id).created_at
        except self._m.account.DoesNotExist:
            created_at = now
        self._m.account(
            account.tenant_id,
            account.id,
            data=account.model_dump(mode="json", exclude={"password", "tenant_id", "id"}),
            secret=account.password,
            created_at=created_at,
            updated_at=now,
        ).save()

    def get_account(self, tenant_id: str, account_id: str) -> Account | None:
        try:
            item = self._m.account.get(tenant_id, account_id)
        except self._m.account.DoesNotExist:
            return None
        return self._to_account(item)

    def list_accounts(self, tenant_id: str | None) -> list[StoredAccount]:
        items: Iterable[Any] = (
            self._m.account.query(tenant_id) if tenant_id is not None else self._m.account.scan()
        )
        accounts = [
            StoredAccount(self._to_account(item), item.created_at, item.updated_at)
            for item in items
        ]
        return sorted(accounts, key=lambda s: (s.account.tenant_id or "", s.account.id))

    def tenants_with_account(self, account_id: str) -> list[str]:
        return sorted({item.tenant_id for item in self._m.account.by_id.query(account_id)})

    @staticmethod
    def _to_account(item: Any) -> Account:
        return Account.model_validate(
            {**item.data, "tenant_id": item.tenant_id, "id": item.id, "password": item.secret}
        )

    # -- messages: submission -------------------------------------------------------------

    def get_states(self, tenant_id: str, ids: Iterable[str]) -> dict[str, MessageState]:
        keys = sorted(set(ids))
        found: dict[str, MessageState] = {}
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            chunk = [(tenant_id, key) for key in keys[start : start + _BATCH_GET_LIMIT]]
            for item in self._m.message.batch_get(chunk, consistent_read=True):
                found[item.id] = self._to_state(item)
        return found

    def save_submission(
        self,
        state: MessageState,
        payload: dict[str, Any],
        expected_ticket: str | None,
        event: MessageEvent | None = None,
    ) -> None:
        """Store a new or replacing message, only if it is still as the caller saw it:
        absent (expected_ticket None) or waiting with that ticket. StaleWrite otherwise."""
        m = self._m.message
        if expected_ticket is None:
            condition = m.id.does_not_exist()
        else:
            condition = (m.ticket == expected_ticket) & m.status.is_in(
                *(s.value for s in WAITING_STATUSES)
            )
        try:
            with TransactWrite(connection=self._m.connection) as tx:
                tx.save(self._from_state(state), condition=condition)
                tx.save(self._m.body(state.tenant_id, state.id, payload=payload))
                if event is not None:
                    tx.save(self._from_event(state.tenant_id, event))
        except TransactWriteError as error:
            if _is_condition_failure(error):
                raise StaleWrite(state.id) from error
            raise

    # -- messages: delivery ---------------------------------------------------------------

    def claim(
        self, tenant_id: str, message_id: str, ticket: str, now: float, lease_seconds: int
    ) -> MessageState | None:
        """Make this sender the message's one owner, or None when it is not claimable with
        this ticket now (finished, superseded, not yet due, or owned under a live lease)."""
        m = self._m.message
        claimable = m.status.is_in(*(s.value for s in WAITING_STATUSES)) | (
            (m.status == MessageStatus.SENDING.value) & (m.lease_until < now)
        )
        due = m.deferred_ts.does_not_exist() | (m.deferred_ts <= now)
        condition = (m.ticket == ticket) & claimable & due
        item = m(tenant_id, message_id)
        try:
            item.update(
                actions=[
                    m.status.set(MessageStatus.SENDING.value),
                    m.lease_until.set(now + lease_seconds),
                    m.attempts.add(1),
                    m.updated_at.set(now),
                ],
                condition=condition,
            )
        except UpdateError as error:
            if _is_condition_failure(error):
                return None
            raise
        return self._to_state(item)

    def get_state(self, tenant_id: str, message_id: str) -> MessageState | None:
        try:
            return self._to_state(self._m.message.get(tenant_id, message_id, consistent_read=True))
        except self._m.message.DoesNotExist:
            return None

    def get_payload(self, tenant_id: str, message_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._m.body.get(tenant_id, message_id).payload)
        except self._m.body.DoesNotExist:
            return None

    def get_payloads(self, tenant_id: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = sorted(set(ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            chunk = [(tenant_id, key) for key in keys[start : start + _BATCH_GET_LIMIT]]
            for item in self._m.body.batch_get(chunk):
                found[item.id] = dict(item.payload)
        return found

    def hand_on(self, tenant_id: str, message_id: str, old_ticket: str, new_ticket: str) -> bool:
        """Replace the ticket of a waiting message, so the reference about to be queued is the
        only live one. False when the message moved on in the meantime."""
        m = self._m.message
        try:
            m(tenant_id, message_id).update(
                actions=[m.ticket.set(new_ticket)],
                condition=(m.ticket == old_ticket)
                & m.status.is_in(*(s.value for s in WAITING_STATUSES)),
            )
        except UpdateError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

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
    ) -> None:
        """Record the outcome of the attempt `claimed` made, with its event, in one
        transaction; StaleWrite when that attempt no longer owns the message."""
        m = self._m.message
        actions = [
            m.status.set(status.value),
            m.updated_at.set(now),
            m.lease_until.remove(),
        ]
        if status is MessageStatus.SENT:
            actions += [m.sent_ts.set(now), m.deferred_ts.remove()]
        elif status is MessageStatus.ERROR:
            actions += [m.error_ts.set(now), m.error.set(error), m.deferred_ts.remove()]
        else:
            assert due_ts is not None
            assert new_ticket is not None
            actions += [m.deferred_ts.set(due_ts), m.ticket.set(new_ticket)]
            if error is not None:
                actions.append(m.error.set(error))
        if retries is not None:
            actions.append(m.retries.set(retries))
        condition = (m.status == MessageStatus.SENDING.value) & (m.attempts == claimed.attempts)
        try:
            with TransactWrite(connection=self._m.connection) as tx:
                tx.update(m(claimed.tenant_id, claimed.id), actions=actions, condition=condition)
                tx.save(self._from_event(claimed.tenant_id, event))
        except TransactWriteError as failure:
            if _is_condition_failure(failure):
                raise StaleWrite(claimed.id) from failure
            raise

    # -- messages: listing ----------------------------------------------------------------

    def list_states(self, tenant_id: str | None) -> list[MessageState]:
        items: Iterator[Any] = (
            self._m.message.query(tenant_id) if tenant_id is not None else self._m.message.scan()
        )
        return [self._to_state(item) for item in items]

    def events_by_message(self, tenant_id: str) -> dict[str, list[MessageEvent]]:
        events: dict[str, list[MessageEvent]] = {}
        for item in self._m.event.query(tenant_id):
            events.setdefault(item.message_id, []).append(self._to_event(item))
        return events

    # -- mapping ----------------------------------------------------------------------------

    def _from_state(self, state: MessageState) -> Model:
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
        )

    def _from_event(self, tenant_id: str, event: MessageEvent) -> Model:
        return self._m.event(
            tenant_id,
            event.event_id,
            message_id=event.message_id,
            event_type=event.event_type.value,
            event_ts=event.event_ts,
            description=event.description,
            metadata=event.metadata or None,
            reported_ts=event.reported_ts,
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
