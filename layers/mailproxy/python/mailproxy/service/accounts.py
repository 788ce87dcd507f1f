"""SMTP accounts: create or replace, list, delete. Passwords are sealed before storage."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr, ValidationError

from mailproxy.auth import Principal, scoped_tenant
from mailproxy.domain.account import NEW_ACCOUNT_FIELDS, Account, StoredAccount, changed_fields
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import BadRequest, FieldProblem, InvalidRequest
from mailproxy.domain.tenant import Tenant
from mailproxy.secret_box import account_context
from mailproxy.service.ports import AccountStore, Sealer


def _required_tenant(caller: Principal, tenant_id: str | None, loc: tuple[str, ...]) -> str:
    scoped = scoped_tenant(caller, tenant_id)
    if scoped is None:
        raise InvalidRequest([FieldProblem(loc, "Field required", "missing")])
    return scoped


DEFAULT_TENANT_ID = "default"


def save_account(
    change: BaseModel, caller: Principal, store: AccountStore, sealer: Sealer, clock: Clock
) -> None:
    """Upsert on (tenant_id, id): an existing account changes the fields given and keeps the
    others (the architecture page adjusts a limit with `{"id", "limit_per_minute"}`); a new
    one needs host and port. A password left out keeps the stored one; an empty one removes it."""
    account_id = str(change.id)  # type: ignore[attr-defined]
    now = clock()
    tenant_id = _account_tenant(caller, change.tenant_id, account_id, store, now)  # type: ignore[attr-defined]
    given = changed_fields(change)
    existing = store.get_account(tenant_id, account_id)
    if existing is None:
        missing = [name for name in NEW_ACCOUNT_FIELDS if given.get(name) is None]
        if missing:
            raise InvalidRequest(
                [FieldProblem(("body", name), "Field required", "missing") for name in missing]
            )
    password: SecretStr | None = given.pop("password", None)
    base = existing.account.model_dump(exclude={"password"}) if existing else {}
    try:
        account = Account.model_validate(
            {**base, **given, "id": account_id, "tenant_id": tenant_id}
        )
    except ValidationError as error:
        raise InvalidRequest(
            [
                FieldProblem(("body", *problem["loc"]), problem["msg"], problem["type"])
                for problem in error.errors()
            ]
        ) from error
    plaintext = password.get_secret_value() if password is not None else None
    sealed = sealer.seal(plaintext, account_context(tenant_id, account_id)) if plaintext else None
    store.put_account(account, sealed, keep_password=password is None, now=now)


def _account_tenant(
    caller: Principal, tenant_id: str | None, account_id: str, store: AccountStore, now: float
) -> str:
    """The tenant an account belongs to when the body names none: the token's; for the admin
    token, the one tenant that has this account, else the only tenant there is, else (a fresh
    install, as on the architecture page) a tenant "default" made for it."""
    scoped = scoped_tenant(caller, tenant_id)
    if scoped is not None:
        return scoped
    owners = store.tenants_with_account(account_id)
    if len(owners) == 1:
        return owners[0]
    if not owners:
        tenants = store.list_tenants()
        if len(tenants) == 1:
            return tenants[0].id
        if not tenants:
            store.create_tenant(Tenant(id=DEFAULT_TENANT_ID, created_at=now, updated_at=now))
            return DEFAULT_TENANT_ID
        count = f"{len(tenants)} tenants exist and none has an account '{account_id}'"
    else:
        count = f"{len(owners)} tenants have an account '{account_id}'"
    raise InvalidRequest([FieldProblem(("body", "tenant_id"), f"tenant_id is required: {count}")])


def list_accounts(
    caller: Principal, tenant_id: str | None, store: AccountStore
) -> list[StoredAccount]:
    return store.list_accounts(scoped_tenant(caller, tenant_id))


def delete_account(
    account_id: str, caller: Principal, tenant_id: str | None, store: AccountStore
) -> None:
    scoped = _required_tenant(caller, tenant_id, ("query", "tenant_id"))
    if not store.delete_account(scoped, account_id):
        raise BadRequest(f"Account '{account_id}' not found for tenant '{scoped}'")
