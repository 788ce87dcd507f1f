"""Tenants: create, read, patch, list, delete (with everything they own), find by key hash."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from mailproxy.domain.large_files import LargeFileConfig
from mailproxy.domain.tenant import (
    DEFAULT_ATTACHMENT_PATH,
    DEFAULT_SYNC_PATH,
    TENANT_FIELDS,
    StoredClientAuth,
    Tenant,
)
from mailproxy.store.base import Records, is_condition_failure


class TenantRecords(Records):
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
            if is_condition_failure(error):
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
            if is_condition_failure(error):
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
            elif name == "large_file_config":
                attributes[name] = value.model_dump(mode="json") if value is not None else None
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
            large_file_config=(
                LargeFileConfig.model_validate(item.large_file_config)
                if item.large_file_config
                else None
            ),
        )
