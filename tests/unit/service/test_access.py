"""Finding the tenant behind an API key, against the in-memory store: the key index is
cached a while, the tenant is read every time, so a rotated key stops at once."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mailproxy.auth import hash_api_key
from mailproxy.domain.tenant import Tenant
from mailproxy.service.access import TenantKeys
from tests.support.fakes import T0, InMemoryStore


@dataclass
class CountingStore(InMemoryStore):
    lookups: list[str] = field(default_factory=list)

    def tenant_id_for_key(self, key_hash: str) -> str | None:
        self.lookups.append(key_hash)
        return super().tenant_id_for_key(key_hash)


def store_with_key(key: str) -> CountingStore:
    store = CountingStore()
    store.create_tenant(
        Tenant(id="acme", created_at=T0, updated_at=T0, api_key_hash=hash_api_key(key))
    )
    return store


def test_a_key_finds_its_tenant_and_its_index_lookup_is_cached() -> None:
    store = store_with_key("k1")
    keys = TenantKeys(store, monotonic=lambda: 0.0)
    first = keys.tenant_for_key(hash_api_key("k1"))
    second = keys.tenant_for_key(hash_api_key("k1"))
    assert first is not None
    assert second is not None
    assert (first.id, second.id) == ("acme", "acme")
    assert len(store.lookups) == 1


def test_an_unknown_key_finds_nobody() -> None:
    keys = TenantKeys(store_with_key("k1"), monotonic=lambda: 0.0)
    assert keys.tenant_for_key(hash_api_key("other")) is None


def test_a_rotated_key_stops_at_once_although_its_lookup_was_cached() -> None:
    # Given a key whose tenant was found (and cached)
    store = store_with_key("k1")
    keys = TenantKeys(store, monotonic=lambda: 0.0)
    assert keys.tenant_for_key(hash_api_key("k1")) is not None
    # When the tenant's key is rotated
    store.tenants["acme"] = replace(store.tenants["acme"], api_key_hash=hash_api_key("k2"))
    # Then the old key finds nobody, at once
    assert keys.tenant_for_key(hash_api_key("k1")) is None


def test_the_cached_lookup_is_made_again_after_its_time() -> None:
    store = store_with_key("k1")
    now = [0.0]
    keys = TenantKeys(store, monotonic=lambda: now[0], ttl_seconds=60)
    keys.tenant_for_key(hash_api_key("k1"))
    now[0] = 61.0
    keys.tenant_for_key(hash_api_key("k1"))
    assert len(store.lookups) == 2
