"""POST /account and GET /accounts."""

from __future__ import annotations

from typing import Any, Protocol

from mailproxy.auth import Principal
from mailproxy.domain.account import Account, StoredAccount
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import FieldProblem, InvalidRequest
from mailproxy.domain.record import iso_utc


class AccountStore(Protocol):
    def put_account(self, account: Account, now: float) -> None: ...
    def list_accounts(self, tenant_id: str | None) -> list[StoredAccount]: ...


def scoped_tenant(caller: Principal, tenant_id: str | None) -> str | None:
    """The tenant a request is about: the one asked for, else the caller's own (None: every
    tenant, for the admin)."""
    return tenant_id if tenant_id is not None else caller.tenant_id


def save_account(account: Account, caller: Principal, store: AccountStore, clock: Clock) -> None:
    tenant_id = scoped_tenant(caller, account.tenant_id)
    if tenant_id is None:
        raise InvalidRequest([FieldProblem(("body", "tenant_id"), "Field required", "missing")])
    store.put_account(account.model_copy(update={"tenant_id": tenant_id}), clock())


def list_accounts(
    caller: Principal, tenant_id: str | None, store: AccountStore
) -> list[dict[str, Any]]:
    return [
        stored.account.public_view()
        | {"created_at": iso_utc(stored.created_at), "updated_at": iso_utc(stored.updated_at)}
        for stored in store.list_accounts(scoped_tenant(caller, tenant_id))
    ]
