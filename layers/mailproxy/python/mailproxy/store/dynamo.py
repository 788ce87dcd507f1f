"""The store: every read and write of tenants, accounts, messages and events.

Each write that changes a message's state is conditional on what the writer last saw (its
ticket or its claimed attempt), so a stale sender, a redelivered queue record or a racing
request can never overwrite a newer decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from mailproxy.config import ResourceNames
from mailproxy.domain.account import Account, StoredAccount
from mailproxy.domain.errors import StaleWrite
from mailproxy.domain.priority import Priority
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.status import FINAL_STATUSES, WAITING_STATUSES, EventType, MessageStatus
from mailproxy.domain.tenant import (
    DEFAULT_ATTACHMENT_PATH,
    DEFAULT_SYNC_PATH,
    TENANT_FIELDS,
    StoredClientAuth,
    Tenant,
)
from mailproxy.store.models import Models, bind_models

DeleteOutcome = Literal["removed", "not_found", "in_flight"]
_CONDITION_FAILED = {"ConditionalCheckFailedException", "TransactionCanceledException"}
_BATCH_GET_LIMIT = 100


def _is_condition_failure(
    error: PutError | UpdateError | DeleteError | TransactWriteError,
) -> bool:
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

    def put_account(
        self, account: Account, sealed_password: str | None, keep_password: bool, now: float
    ) -> None:
        """Create or replace the account (upsert on tenant_id + id). With keep_password, the
        stored password stays as it is (the client sent none)."""
        assert account.tenant_id is not None
        try:
            existing = self._m.account.get(account.tenant_id, account.id, consistent_read=True)
        except self._m.account.DoesNotExist:
            existing = None
        if keep_password and existing is not None:
            sealed_password = existing.secret
        self._m.account(
            account.tenant_id,
            account.id,
            data=account.model_dump(mode="json", exclude={"password", "tenant_id", "id"}),
            secret=sealed_password,
            created_at=existing.created_at if existing is not None else now,
            updated_at=now,
        ).save()

    def get_account(self, tenant_id: str, account_id: str) -> StoredAccount | None:
        try:
            item = self._m.account.get(tenant_id, account_id)
        except self._m.account.DoesNotExist:
            return None
        return self._to_stored_account(item)

    def list_accounts(self, tenant_id: str | None) -> list[StoredAccount]:
        items: Iterable[Any] = (
            self._m.account.query(tenant_id) if tenant_id is not None else self._m.account.scan()
        )
        accounts = [self._to_stored_account(item) for item in items]
        return sorted(accounts, key=lambda s: (s.account.tenant_id or "", s.account.id))

    def delete_account(self, tenant_id: str, account_id: str) -> bool:
        m = self._m.account
        try:
            m(tenant_id, account_id).delete(condition=m.id.exists())
        except DeleteError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def tenants_with_account(self, account_id: str) -> list[str]:
        return sorted({item.tenant_id for item in self._m.account.by_id.query(account_id)})

    @staticmethod
    def _to_stored_account(item: Any) -> StoredAccount:
        account = Account.model_validate({**item.data, "tenant_id": item.tenant_id, "id": item.id})
        return StoredAccount(account, item.created_at, item.updated_at, item.secret)

    # -- tenants ------------------------------------------------------------------------------

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        try:
            return self._to_tenant(self._m.tenant.get(tenant_id, consistent_read=True))
        except self._m.tenant.DoesNotExist:
            return None

    def list_tenants(self) -> list[Tenant]:
        return sorted((self._to_tenant(item) for item in self._m.tenant.scan()), key=lambda t: t.id)

    def tenant_id_for_key(self, key_hash: str) -> str | None:
        for item in self._m.tenant.by_key.query(key_hash, limit=1):
            return str(item.id)
        return None

    def create_tenant(self, tenant: Tenant) -> bool:
        """Store a new tenant; False (and nothing written) when the id is taken."""
        m = self._m.tenant
        item = m(tenant.id, created_at=tenant.created_at, updated_at=tenant.updated_at)
        self._apply_tenant_fields(item, tenant)
        item.api_key_hash = tenant.api_key_hash
        item.api_key_expires_at = tenant.api_key_expires_at
        try:
            item.save(condition=m.id.does_not_exist())
        except PutError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def patch_tenant(self, tenant_id: str, patch: dict[str, Any], now: float) -> bool:
        """Change the named fields of a Tenant (None clears one); False when the tenant does
        not exist."""
        m = self._m.tenant
        actions = [m.updated_at.set(now)]
        for name, value in self._tenant_attributes(patch).items():
            attribute = getattr(m, name)
            actions.append(attribute.remove() if value is None else attribute.set(value))
        try:
            m(tenant_id).update(actions=actions, condition=m.id.exists())
        except UpdateError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def delete_tenant(self, tenant_id: str) -> bool:
        """The tenant with everything it owns: accounts, messages, bodies, events."""
        if self.get_tenant(tenant_id) is None:
            return False
        for model, key in (
            (self._m.account, "id"),
            (self._m.message, "id"),
            (self._m.body, "id"),
            (self._m.event, "event_id"),
        ):
            with model.batch_write() as batch:
                for item in model.query(tenant_id, attributes_to_get=["tenant_id", key]):
                    batch.delete(item)
        self._m.tenant(tenant_id).delete()
        return True

    @staticmethod
    def _tenant_attributes(patch: dict[str, Any]) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for name, value in patch.items():
            if name == "client_auth":
                auth = value or StoredClientAuth()
                attributes |= {
                    "client_auth_method": auth.method,
                    "client_auth_user": auth.user,
                    "client_secret": auth.sealed_secret,
                }
            elif name == "suspended_batches":
                attributes[name] = sorted(value) if value else None
            else:
                attributes[name] = value
        return attributes

    def _apply_tenant_fields(self, item: Any, tenant: Tenant) -> None:
        patch = {name: getattr(tenant, name) for name in TENANT_FIELDS}
        for name, value in self._tenant_attributes(patch).items():
            setattr(item, name, value)

    @staticmethod
    def _to_tenant(item: Any) -> Tenant:
        return Tenant(
            id=item.id,
            created_at=float(item.created_at),
            updated_at=float(item.updated_at),
            name=item.name,
            client_base_url=item.client_base_url,
            client_sync_path=item.client_sync_path or DEFAULT_SYNC_PATH,
            client_attachment_path=item.client_attachment_path or DEFAULT_ATTACHMENT_PATH,
            client_auth=StoredClientAuth(
                method=item.client_auth_method or "none",
                user=item.client_auth_user,
                sealed_secret=item.client_secret,
            ),
            active=bool(item.active) if item.active is not None else True,
            suspended_batches=frozenset(item.suspended_batches or ()),
            api_key_hash=item.api_key_hash,
            api_key_expires_at=item.api_key_expires_at,
            last_sync_ts=item.last_sync_ts,
            next_sync_after=item.next_sync_after,
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
        try:
            with TransactWrite(connection=self._m.connection) as tx:
                tx.delete(m(tenant_id, message_id), condition=m.id.exists() & not_in_flight)
                tx.delete(self._m.body(tenant_id, message_id))
        except TransactWriteError as error:
            if not _is_condition_failure(error):
                raise
            return "in_flight" if self.get_state(tenant_id, message_id) else "not_found"
        return "removed"

    def finished_before(self, tenant_id: str, before_ts: float) -> list[MessageState]:
        m = self._m.message
        condition = m.status.is_in(*(s.value for s in FINAL_STATUSES)) & (m.updated_at < before_ts)
        return [self._to_state(item) for item in m.query(tenant_id, filter_condition=condition)]

    def remove_finished(self, tenant_id: str, message_id: str, event_ids: list[str]) -> bool:
        """Remove a finished message with its events, only if it is still finished."""
        m = self._m.message
        try:
            with TransactWrite(connection=self._m.connection) as tx:
                tx.delete(
                    m(tenant_id, message_id),
                    condition=m.status.is_in(*(s.value for s in FINAL_STATUSES)),
                )
                tx.delete(self._m.body(tenant_id, message_id))
        except TransactWriteError as error:
            if _is_condition_failure(error):
                return False
            raise
        with self._m.event.batch_write() as batch:
            for event_id in event_ids:
                batch.delete(self._m.event(tenant_id, event_id))
        return True

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
