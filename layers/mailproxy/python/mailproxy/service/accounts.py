"""SMTP accounts: create or replace, list, delete. Passwords are sealed before storage."""

from __future__ import annotations

from typing import Any, Protocol

from mailproxy.auth import Principal, scoped_tenant
from mailproxy.domain.account import Account, StoredAccount
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import BadRequest, FieldProblem, InvalidRequest
from mailproxy.domain.record import iso_utc
from mailproxy.secret_box import account_context


class AccountStore(Protocol):
    def put_account(
        self, account: Account, sealed_password: str | None, keep_password: bool, now: float
    ) -> None: ...
    def list_accounts(self, tenant_id: str | None) -> list[StoredAccount]: ...
    def delete_account(self, tenant_id: str, account_id: str) -> bool: ...


class Sealer(Protocol):
    def seal(self, plaintext: str, context: dict[str, str]) -> str: ...


def _required_tenant(caller: Principal, tenant_id: str | None, loc: tuple[str, ...]) -> str:
    scoped = scoped_tenant(caller, tenant_id)
    if scoped is None:
        raise InvalidRequest([FieldProblem(loc, "Field required", "missing")])
    return scoped


def save_account(
    account: Account, caller: Principal, store: AccountStore, sealer: Sealer, clock: Clock
) -> None:
    """Upsert on (tenant_id, id). A password left out keeps the stored one; an empty
    password removes it."""
    tenant_id = _required_tenant(caller, account.tenant_id, ("body", "tenant_id"))
    password = account.password.get_secret_value() if account.password is not None else None
    sealed = sealer.seal(password, account_context(tenant_id, account.id)) if password else None
    store.put_account(
        account.model_copy(update={"tenant_id": tenant_id, "password": None}),
        sealed,
        keep_password=password is None,
        now=clock(),
    )


def list_accounts(
    caller: Principal, tenant_id: str | None, store: AccountStore
) -> list[dict[str, Any]]:
    return [
        stored.account.public_view()
        | {"created_at": iso_utc(stored.created_at), "updated_at": iso_utc(stored.updated_at)}
        for stored in store.list_accounts(scoped_tenant(caller, tenant_id))
    ]


def delete_account(
    account_id: str, caller: Principal, tenant_id: str | None, store: AccountStore
) -> None:
    scoped = _required_tenant(caller, tenant_id, ("query", "tenant_id"))
    if not store.delete_account(scoped, account_id):
        raise BadRequest(f"Account '{account_id}' not found for tenant '{scoped}'")
