"""Tenants as their use cases see them, against the in-memory store: create or replace,
update what is given, keys that rotate and revoke (no AWS)."""

from __future__ import annotations

import pytest

from mailproxy.auth import ADMIN, Principal, hash_api_key
from mailproxy.domain.errors import InvalidRequest, NotFound
from mailproxy.domain.tenant import TenantIn, TenantUpdate
from mailproxy.outbound_http import UrlPolicy
from mailproxy.secret_box import client_auth_context
from mailproxy.service import tenants
from tests.support.fakes import FakeClock, FakeSealer, InMemoryStore

POLICY = UrlPolicy(allow_loopback=True)


def put(store: InMemoryStore, clock: FakeClock, **fields: object) -> str | None:
    request = TenantIn.model_validate({"id": "acme"} | fields)
    return tenants.put_tenant(request, store, FakeSealer(), POLICY, clock)


def test_a_new_tenant_gets_a_key_that_is_stored_only_as_its_hash() -> None:
    # Given an empty store / When the admin creates a tenant
    store, clock = InMemoryStore(), FakeClock()
    key = put(store, clock, name="Acme")
    # Then the answer holds its key, and the store only the key's hash
    assert key is not None
    assert store.tenants["acme"].api_key_hash == hash_api_key(key)
    assert store.tenants["acme"].name == "Acme"


def test_replacing_a_tenant_keeps_its_key_and_gives_none() -> None:
    # Given a tenant with a key
    store, clock = InMemoryStore(), FakeClock()
    key = put(store, clock, name="Acme")
    # When it is posted again with another name
    clock.advance(10)
    again = put(store, clock, name="Acme Ltd")
    # Then no new key is given, the old one still matches, and the name changed
    assert again is None
    tenant = store.tenants["acme"]
    assert key is not None
    assert tenant.api_key_hash == hash_api_key(key)
    assert (tenant.name, tenant.updated_at) == ("Acme Ltd", clock.now)


def test_client_auth_is_stored_sealed_for_its_tenant() -> None:
    store, clock = InMemoryStore(), FakeClock()
    put(store, clock, client_auth={"method": "bearer", "token": "s3cret"})
    sealed = store.tenants["acme"].client_auth.sealed_secret
    assert sealed is not None
    assert "s3cret" not in sealed
    assert FakeSealer().open(sealed, client_auth_context("acme")) == "s3cret"


def test_a_client_url_the_policy_refuses_is_a_field_problem() -> None:
    store, clock = InMemoryStore(), FakeClock()
    request = TenantIn(id="acme", client_base_url="http://169.254.169.254/")
    with pytest.raises(InvalidRequest):
        tenants.put_tenant(request, store, FakeSealer(), UrlPolicy(), clock)
    assert store.tenants == {}


def test_an_update_changes_only_the_fields_given() -> None:
    # Given a tenant with a name and a URL
    store, clock = InMemoryStore(), FakeClock()
    put(store, clock, name="Acme", client_base_url="http://127.0.0.1:9/")
    # When only its name is updated
    update = TenantUpdate.model_validate({"name": "Renamed"})
    tenants.update_tenant("acme", update, ADMIN, store, FakeSealer(), POLICY, clock)
    # Then the URL is as it was
    tenant = store.tenants["acme"]
    assert (tenant.name, tenant.client_base_url) == ("Renamed", "http://127.0.0.1:9/")


def test_updating_an_unknown_tenant_is_not_found() -> None:
    store, clock = InMemoryStore(), FakeClock()
    with pytest.raises(NotFound):
        tenants.update_tenant(
            "ghost", TenantUpdate(name="x"), ADMIN, store, FakeSealer(), POLICY, clock
        )


def test_a_rotated_key_replaces_the_old_one_and_a_revoked_key_leaves_none() -> None:
    store, clock = InMemoryStore(), FakeClock()
    old = put(store, clock)
    new = tenants.rotate_api_key("acme", store, clock)
    assert new != old
    assert store.tenants["acme"].api_key_hash == hash_api_key(new)
    tenants.revoke_api_key("acme", store, clock)
    assert store.tenants["acme"].api_key_hash is None


def test_a_tenant_reads_itself_and_lists_only_active_tenants_when_asked() -> None:
    store, clock = InMemoryStore(), FakeClock()
    put(store, clock)
    tenants.put_tenant(TenantIn(id="idle", active=False), store, FakeSealer(), POLICY, clock)
    assert tenants.get_tenant("acme", Principal("acme"), store).id == "acme"
    listed = tenants.list_tenants(store, active_only=True)
    assert [tenant.id for tenant in listed] == ["acme"]


def test_deleting_a_tenant_removes_it_and_a_second_delete_is_not_found() -> None:
    store, clock = InMemoryStore(), FakeClock()
    put(store, clock)
    tenants.delete_tenant("acme", store)
    assert store.tenants == {}
    with pytest.raises(NotFound):
        tenants.delete_tenant("acme", store)
