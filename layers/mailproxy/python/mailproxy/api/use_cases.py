"""The api's use cases, wired in one place: the composition root of the api Lambda.

`build()` puts them together from the environment's cached clients (mailproxy.runtime); the
handler builds them once per execution environment, on its first request that needs them.
Each route parses its input, calls one method here and maps the result to its answer.

The collaborators are kept as their providers, not built here: a request pays only for what
it uses (GET /metrics never builds a KMS client), and runtime.reset() (tests, local mode)
still takes effect.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailproxy import auth, runtime
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import FieldProblem, InvalidRequest, NotFound
from mailproxy.domain.message import AddMessagesRequest
from mailproxy.queueing import new_ticket
from mailproxy.service import (
    accounts,
    command_log,
    files,
    housekeeping,
    instance,
    listing,
    scheduling,
    submission,
    suspension,
    tenants,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mailproxy.api.requests import TenantIn, TenantUpdate
    from mailproxy.domain.account import StoredAccount
    from mailproxy.domain.command_log import CommandQuery, CommandRecord
    from mailproxy.domain.message import Message
    from mailproxy.domain.tenant import Tenant
    from mailproxy.outbound_http import UrlPolicy
    from mailproxy.queueing import SqsQueues, Wakeups
    from mailproxy.secret_box import SecretBox
    from mailproxy.service.access import TenantKeys
    from mailproxy.service.housekeeping import DeleteResult
    from mailproxy.service.listing import ListedMessage
    from mailproxy.service.ports import BounceTrigger, CommandLog
    from mailproxy.service.submission import SubmissionPolicy, SubmissionResult
    from mailproxy.service.suspension import SuspensionResult
    from mailproxy.service.tenants import SyncStatus
    from mailproxy.store.dynamo import Store
    from mailproxy.store.file_objects import FileObjects


@dataclass(frozen=True)
class Wiring:
    """Where each collaborator comes from (a provider each, called when needed)."""

    store: Callable[[], Store]
    queues: Callable[[], SqsQueues]
    wakeups: Callable[[], Wakeups]
    file_objects: Callable[[], FileObjects]
    secret_box: Callable[[], SecretBox]
    url_policy: Callable[[], UrlPolicy]
    submission_policy: Callable[[], SubmissionPolicy]
    tenant_keys: Callable[[], TenantKeys]
    admin_token: Callable[[], str | None]
    new_ticket: Callable[[], str]
    command_log: Callable[[], CommandLog]
    bounce_trigger: Callable[[], BounceTrigger]
    salt: Callable[[], int]
    clock: Clock


class ApiUseCases:
    def __init__(self, wiring: Wiring) -> None:
        self._w = wiring

    # -- who is calling ---------------------------------------------------------------------

    def authenticate(self, presented: str | None) -> auth.Principal:
        return auth.authenticate(
            presented,
            self._w.admin_token(),
            self._w.tenant_keys().tenant_for_key,
            clock=self._w.clock,
        )

    # -- service ----------------------------------------------------------------------------

    def metrics_text(self) -> str:
        return listing.prometheus_text(self._w.store())

    def download_location(self, token: str) -> str:
        return files.download_location(
            token, self._w.store(), self._w.file_objects(), clock=self._w.clock
        )

    def run_now(self, caller: auth.Principal) -> None:
        """Scheduling now, and delivery reports: a tenant's own even in its do-not-disturb
        time; the admin's wakes every tenant."""
        scheduling.tick(self._w.store(), self._w.queues(), clock=self._w.clock)
        woken = None if caller.is_admin else [caller.tenant_id or ""]
        self._w.wakeups().wake(woken, force=not caller.is_admin)

    # -- the instance ------------------------------------------------------------------------

    def get_instance(self) -> dict[str, Any]:
        return instance.get_instance(self._w.store())

    def update_instance(self, change: BaseModel) -> None:
        instance.update_instance(change, self._w.store(), self._w.secret_box(), self._w.clock)

    def reload_bounce(self) -> None:
        instance.reload_bounce(self._w.bounce_trigger())

    def reload_bounce_reporting_enabled(self) -> bool:
        """0.7's instance/reload_bounce: the reader runs now; whether bounces are enabled."""
        self.reload_bounce()
        return bool(self.get_instance().get("bounce_enabled"))

    # -- the command log -------------------------------------------------------------------

    def record_command(
        self, *, endpoint: str, tenant_id: str | None, payload: object, response_status: int
    ) -> CommandRecord | None:
        return command_log.record_command(
            self._w.command_log(),
            self._w.clock,
            self._w.salt,
            endpoint=endpoint,
            tenant_id=tenant_id,
            payload=payload,
            response_status=response_status,
        )

    def list_commands(self, query: CommandQuery) -> list[CommandRecord]:
        return command_log.list_commands(self._w.command_log(), self._w.clock, query)

    def get_command(self, record_id: int) -> CommandRecord:
        found = command_log.get_command(self._w.command_log(), self._w.clock, record_id)
        if found is None:
            raise NotFound(f"Command '{record_id}' not found")
        return found

    def export_commands(
        self, *, tenant_id: str | None, since_ts: float | None, until_ts: float | None
    ) -> list[CommandRecord]:
        return command_log.export_commands(
            self._w.command_log(),
            self._w.clock,
            tenant_id=tenant_id,
            since_ts=since_ts,
            until_ts=until_ts,
        )

    # -- tenants ----------------------------------------------------------------------------

    def put_tenant(self, request: TenantIn) -> str | None:
        return tenants.put_tenant(
            request,
            self._w.store(),
            self._w.secret_box(),
            self._w.url_policy(),
            clock=self._w.clock,
        )

    def add_tenant(self, request: TenantIn) -> tuple[Tenant, str | None]:
        """0.7's tenants/add: put_tenant, then the tenant as stored (and its new key, if new)."""
        api_key = self.put_tenant(request)
        return tenants.get_tenant(request.id, auth.ADMIN, self._w.store()), api_key or None

    def update_tenant_and_get(
        self, tenant_id: str, update: TenantUpdate, caller: auth.Principal
    ) -> Tenant:
        """0.7's tenants/update: update_tenant, then the tenant as stored."""
        self.update_tenant(tenant_id, update, caller)
        return self.get_tenant(tenant_id, caller)

    def list_tenants(self, active_only: bool) -> list[Tenant]:
        return tenants.list_tenants(self._w.store(), active_only)

    def sync_status(self) -> SyncStatus:
        return tenants.sync_status(self._w.store(), clock=self._w.clock)

    def get_tenant(self, tenant_id: str, caller: auth.Principal) -> Tenant:
        return tenants.get_tenant(tenant_id, caller, self._w.store())

    def update_tenant(self, tenant_id: str, update: TenantUpdate, caller: auth.Principal) -> None:
        tenants.update_tenant(
            tenant_id,
            update,
            caller,
            self._w.store(),
            self._w.secret_box(),
            self._w.url_policy(),
            clock=self._w.clock,
        )

    def delete_tenant(self, tenant_id: str) -> None:
        tenants.delete_tenant(tenant_id, self._w.store())

    def rotate_api_key(self, tenant_id: str, expires_at: float | None = None) -> str:
        return tenants.rotate_api_key(
            tenant_id, self._w.store(), clock=self._w.clock, expires_at=expires_at
        )

    def revoke_api_key(self, tenant_id: str) -> None:
        tenants.revoke_api_key(tenant_id, self._w.store(), clock=self._w.clock)

    # -- accounts ---------------------------------------------------------------------------

    def save_account(self, change: BaseModel, caller: auth.Principal) -> None:
        accounts.save_account(
            change, caller, self._w.store(), self._w.secret_box(), clock=self._w.clock
        )

    def add_account(self, change: BaseModel, caller: auth.Principal) -> StoredAccount:
        """0.7's accounts/add: save_account, then the account as stored. 0.7 requires the
        tenant (the admin's 0.6 body may leave it out)."""
        tenant_id = auth.scoped_tenant(caller, getattr(change, "tenant_id", None))
        if tenant_id is None:
            raise InvalidRequest([FieldProblem(("body", "tenant_id"), "Field required", "missing")])
        self.save_account(change.model_copy(update={"tenant_id": tenant_id}), caller)
        return self.get_account(caller, tenant_id, str(getattr(change, "id", "")))

    def get_account(self, caller: auth.Principal, tenant_id: str, account_id: str) -> StoredAccount:
        found = [
            stored
            for stored in accounts.list_accounts(caller, tenant_id, self._w.store())
            if stored.account.id == account_id
        ]
        if not found:
            raise NotFound(f"Account '{account_id}' not found for tenant '{tenant_id}'")
        return found[0]

    def list_accounts(self, caller: auth.Principal, tenant_id: str | None) -> list[StoredAccount]:
        return accounts.list_accounts(caller, tenant_id, self._w.store())

    def delete_account(
        self, account_id: str, caller: auth.Principal, tenant_id: str | None
    ) -> None:
        accounts.delete_account(account_id, caller, tenant_id, self._w.store())

    # -- messages ---------------------------------------------------------------------------

    def add_messages(self, request: AddMessagesRequest, caller: auth.Principal) -> SubmissionResult:
        return submission.add_messages(
            request,
            caller,
            self._w.store(),
            self._w.queues(),
            clock=self._w.clock,
            new_ticket=self._w.new_ticket,
            policy=self._w.submission_policy(),
        )

    def list_messages(
        self,
        caller: auth.Principal,
        *,
        tenant_id: str | None,
        active_only: bool,
        include_history: bool,
        limit: int | None,
    ) -> list[ListedMessage]:
        return listing.list_messages(
            caller,
            self._w.store(),
            tenant_id=tenant_id,
            active_only=active_only,
            include_history=include_history,
            limit=limit,
        )

    def add_message(self, message: Message, caller: auth.Principal) -> ListedMessage:
        """0.7's messages/add: one message queued (else the 400 of add_messages), then its
        record."""
        tenant_id = auth.scoped_tenant(caller, message.tenant_id)
        if tenant_id is None:
            # 0.7 requires it; the admin's 0.6 batch may leave it to the account's owner.
            raise InvalidRequest([FieldProblem(("body", "tenant_id"), "Field required", "missing")])
        self.add_messages(AddMessagesRequest(messages=[message]), caller)
        return self.get_message(caller, tenant_id, message.id)

    def get_message(self, caller: auth.Principal, tenant_id: str, message_id: str) -> ListedMessage:
        found = listing.get_message(
            caller, self._w.store(), tenant_id=tenant_id, message_id=message_id
        )
        if found is None:
            raise NotFound(f"Message '{message_id}' not found")
        return found

    def delete_message_by_pk(self, message_pk: str, caller: auth.Principal) -> bool:
        """0.7's messages/delete: the pk is the listing's (tenant_id/id); True if removed."""
        tenant_id, _, message_id = message_pk.partition("/")
        if not tenant_id or not message_id:
            return False
        return self.delete_messages([message_id], caller, tenant_id).removed == 1

    def delete_messages(
        self, ids: list[str], caller: auth.Principal, tenant_id: str | None
    ) -> DeleteResult:
        return housekeeping.delete_messages(
            ids, caller, tenant_id, self._w.store(), clock=self._w.clock
        )

    def cleanup_messages(
        self, caller: auth.Principal, tenant_id: str | None, older_than_seconds: int | None
    ) -> int:
        return housekeeping.cleanup_messages(
            caller, tenant_id, older_than_seconds, self._w.store(), clock=self._w.clock
        )

    def change_suspension(
        self,
        action: str,
        caller: auth.Principal,
        tenant_id: str | None,
        batch_code: str | None,
    ) -> SuspensionResult:
        return suspension.change_suspension(
            action,
            caller,
            tenant_id,
            batch_code,
            self._w.store(),
            clock=self._w.clock,
            queues=self._w.queues(),
        )


def build() -> ApiUseCases:
    """The api's use cases over this execution environment's clients."""
    return ApiUseCases(
        Wiring(
            store=runtime.store,
            queues=runtime.queues,
            wakeups=runtime.wakeups,
            file_objects=runtime.file_objects,
            secret_box=runtime.secret_box,
            url_policy=runtime.url_policy,
            submission_policy=runtime.submission_policy,
            tenant_keys=runtime.tenant_keys,
            admin_token=runtime.admin_token,
            new_ticket=new_ticket,
            command_log=runtime.command_log,
            bounce_trigger=runtime.bounce_trigger,
            salt=lambda: secrets.randbelow(1000),
            clock=runtime.clock,
        )
    )
