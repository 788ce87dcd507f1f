"""SMTP accounts as their use cases see them, against the in-memory store: a new account
needs its server, a change keeps what it does not name, a password is stored sealed."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, SecretStr

from mailproxy.api.responses import account_view
from mailproxy.auth import ADMIN, Principal
from mailproxy.domain.errors import BadRequest, InvalidRequest
from mailproxy.domain.tenant import Tenant
from mailproxy.secret_box import account_context
from mailproxy.service.accounts import delete_account, list_accounts, save_account
from tests.support.fakes import T0, FakeClock, FakeSealer, InMemoryStore

ACME = Principal("acme")


class AccountChange(BaseModel):
    """A POST /account body as the api's request model gives it (its fields set are the
    ones the client sent)."""

    id: str
    tenant_id: str | None = None
    host: str | None = None
    port: int | None = None
    password: SecretStr | None = None
    limit_per_minute: int | None = None


def account_change(**fields: object) -> AccountChange:
    return AccountChange.model_validate({"id": "main"} | fields)


def store_with_acme() -> InMemoryStore:
    store = InMemoryStore()
    store.create_tenant(Tenant(id="acme", created_at=T0, updated_at=T0))
    return store


def test_a_new_account_is_stored_with_its_password_sealed_for_it() -> None:
    store, sealer = store_with_acme(), FakeSealer()
    change = account_change(host="smtp.acme.test", port=587, password="pw")
    save_account(change, ACME, store, sealer, FakeClock())
    stored = store.accounts[("acme", "main")]
    assert (stored.account.host, stored.account.port) == ("smtp.acme.test", 587)
    assert stored.account.password is None
    assert stored.sealed_password is not None
    assert sealer.open(stored.sealed_password, account_context("acme", "main")) == "pw"


def test_a_new_account_without_host_and_port_names_both_missing_fields() -> None:
    with pytest.raises(InvalidRequest) as refused:
        save_account(account_change(), ACME, store_with_acme(), FakeSealer(), FakeClock())
    assert {problem.loc for problem in refused.value.problems} == {
        ("body", "host"),
        ("body", "port"),
    }


def test_a_change_keeps_the_fields_and_the_password_it_does_not_name() -> None:
    # Given an account with a password
    store, sealer, clock = store_with_acme(), FakeSealer(), FakeClock()
    save_account(
        account_change(host="smtp.acme.test", port=587, password="pw"), ACME, store, sealer, clock
    )
    sealed = store.accounts[("acme", "main")].sealed_password
    # When only its limit changes
    clock.advance(5)
    save_account(account_change(limit_per_minute=10), ACME, store, sealer, clock)
    # Then the host, the port and the sealed password are as they were
    stored = store.accounts[("acme", "main")]
    assert (stored.account.host, stored.account.limit_per_minute) == ("smtp.acme.test", 10)
    assert stored.sealed_password == sealed
    assert (stored.created_at, stored.updated_at) == (T0, T0 + 5)


def test_the_admin_on_a_fresh_install_gets_a_default_tenant_for_the_account() -> None:
    store = InMemoryStore()
    save_account(account_change(host="h.test", port=25), ADMIN, store, FakeSealer(), FakeClock())
    assert "default" in store.tenants
    assert ("default", "main") in store.accounts


def test_listing_shows_no_password_and_deleting_twice_is_a_bad_request() -> None:
    store, clock = store_with_acme(), FakeClock()
    save_account(
        account_change(host="h.test", port=25, password="pw"), ACME, store, FakeSealer(), clock
    )
    [listed] = list_accounts(ACME, None, store)
    # The listing holds the password only sealed, and what the api shows of it has none
    assert listed.account.id == "main"
    assert listed.account.password is None
    shown = account_view(listed).model_dump()
    assert "password" not in shown
    assert "pw" not in str(shown)
    delete_account("main", ACME, None, store)
    with pytest.raises(BadRequest):
        delete_account("main", ACME, None, store)
