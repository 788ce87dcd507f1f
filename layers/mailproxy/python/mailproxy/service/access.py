"""Finding the tenant behind a key, with a short per-environment cache of the index lookup.

Only the hash-to-tenant lookup (a query on an eventually consistent index) is cached; the
tenant item itself is read consistently on every request and its stored hash compared, so a
rotated or revoked key stops working at once, in every environment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mailproxy.domain.tenant import Tenant
from mailproxy.service.ports import KeyStore

KEY_LOOKUP_TTL_SECONDS = 60.0
_CACHE_LIMIT = 1024


class TenantKeys:
    def __init__(
        self,
        store: KeyStore,
        monotonic: Callable[[], float],
        ttl_seconds: float = KEY_LOOKUP_TTL_SECONDS,
    ) -> None:
        self._store = store
        self._monotonic = monotonic
        self._ttl = ttl_seconds
        self._tenant_ids: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def tenant_for_key(self, key_hash: str) -> Tenant | None:
        now = self._monotonic()
        with self._lock:
            cached = self._tenant_ids.get(key_hash)
        tenant_id = cached[0] if cached and cached[1] > now else None
        if tenant_id is None:
            tenant_id = self._store.tenant_id_for_key(key_hash)
            if tenant_id is None:
                return None
        tenant = self._store.get_tenant(tenant_id)
        with self._lock:
            if tenant is None or tenant.api_key_hash != key_hash:
                self._tenant_ids.pop(key_hash, None)
                return None
            if len(self._tenant_ids) >= _CACHE_LIMIT:
                self._tenant_ids.clear()
            self._tenant_ids[key_hash] = (tenant_id, now + self._ttl)
        return tenant
