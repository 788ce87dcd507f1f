"""Tenants: create or replace, read, update, list, delete, and their API keys."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mailproxy.auth import Principal, hash_api_key, new_api_key, scoped_tenant
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import FieldProblem, InvalidRequest, NotFound
from mailproxy.domain.large_files import patched_config
from mailproxy.domain.reporting import SYNC_INTERVAL_SECONDS
from mailproxy.domain.tenant import (
    DEFAULT_ATTACHMENT_PATH,
    DEFAULT_SYNC_PATH,
    TENANT_FIELDS,
    ClientAuth,
    StoredClientAuth,
    Tenant,
    TenantFields,
    TenantIn,
    TenantUpdate,
)
from mailproxy.outbound_http import UrlPolicy, url_problem
from mailproxy.secret_box import client_auth_context
from mailproxy.service.ports import Sealer, TenantStore


def tenant_not_found(tenant_id: str) -> NotFound:
    return NotFound(f"Tenant '{tenant_id}' not found")


def _check_url(fields: TenantFields, policy: UrlPolicy) -> None:
    if fields.client_base_url is None:
        return
    problem = url_problem(fields.client_base_url, policy)
    if problem:
        raise InvalidRequest([FieldProblem(("body", "client_base_url"), problem)])


def _stored_auth(tenant_id: str, auth: ClientAuth | None, sealer: Sealer) -> StoredClientAuth:
    """client_auth as it may be stored: its token or password sealed for this tenant."""
    if auth is None:
        return StoredClientAuth()
    secret = auth.secret
    sealed = sealer.seal(secret, client_auth_context(tenant_id)) if secret else None
    return StoredClientAuth(method=auth.method, user=auth.user, sealed_secret=sealed)


def put_tenant(
    request: TenantIn,
    store: TenantStore,
    sealer: Sealer,
    policy: UrlPolicy,
    clock: Clock,
) -> str | None:
    """Create or replace a tenant; the new API key when the tenant is new, else None.
    Replacing keeps the tenant's key, suspensions and sync state. The admin's only (see
    api/access.py), as are the listing, deleting, keys and sync status below."""
    _check_url(request, policy)
    now = clock()
    tenant = Tenant(
        id=request.id,
        created_at=now,
        updated_at=now,
        name=request.name,
        client_base_url=request.client_base_url,
        client_sync_path=request.client_sync_path or DEFAULT_SYNC_PATH,
        client_attachment_path=request.client_attachment_path or DEFAULT_ATTACHMENT_PATH,
        client_auth=_stored_auth(request.id, request.client_auth, sealer),
        active=request.active if request.active is not None else True,
        large_file_config=request.large_file_config,
    )
    key = new_api_key()
    if store.create_tenant(replace(tenant, api_key_hash=hash_api_key(key))):
        return key
    replacement = {name: getattr(tenant, name) for name in TENANT_FIELDS}
    if not store.patch_tenant(tenant.id, replacement, now):
        raise tenant_not_found(tenant.id)  # deleted between the two writes
    return None


def update_tenant(
    tenant_id: str,
    request: TenantUpdate,
    caller: Principal,
    store: TenantStore,
    sealer: Sealer,
    policy: UrlPolicy,
    clock: Clock,
) -> None:
    """Change only the fields the request gives."""
    scoped_tenant(caller, tenant_id)
    _check_url(request, policy)
    given = request.model_fields_set
    patch: dict[str, Any] = {
        name: getattr(request, name)
        for name in ("name", "client_base_url", "client_sync_path", "client_attachment_path")
        if name in given
    }
    if "active" in given and request.active is not None:
        patch["active"] = request.active
    if "client_auth" in given:
        patch["client_auth"] = _stored_auth(tenant_id, request.client_auth, sealer)
    if "large_file_config" in given:
        if request.large_file_config is None:
            patch["large_file_config"] = None
        else:
            # A partial config changes the fields it gives: merged with the stored one and
            # validated whole before anything is written.
            current = store.get_tenant(tenant_id)
            if current is None:
                raise tenant_not_found(tenant_id)
            patch["large_file_config"] = patched_config(
                current.large_file_config, request.large_file_config
            )
    if not store.patch_tenant(tenant_id, patch, clock()):
        raise tenant_not_found(tenant_id)


def get_tenant(tenant_id: str, caller: Principal, store: TenantStore) -> Tenant:
    scoped_tenant(caller, tenant_id)
    tenant = store.get_tenant(tenant_id)
    if tenant is None:
        raise tenant_not_found(tenant_id)
    return tenant


def list_tenants(store: TenantStore, active_only: bool) -> list[Tenant]:
    return [t for t in store.list_tenants() if t.active or not active_only]


def delete_tenant(tenant_id: str, store: TenantStore) -> None:
    if not store.delete_tenant(tenant_id):
        raise tenant_not_found(tenant_id)


def rotate_api_key(
    tenant_id: str, store: TenantStore, clock: Clock, expires_at: float | None = None
) -> str:
    """A new key for the tenant; the old one stops working at once. The new one expires at
    `expires_at` if given (genro-mail-proxy 0.7's create_api_key), else never."""
    key = new_api_key()
    patch = {"api_key_hash": hash_api_key(key), "api_key_expires_at": expires_at}
    if not store.patch_tenant(tenant_id, patch, clock()):
        raise tenant_not_found(tenant_id)
    return key


def revoke_api_key(tenant_id: str, store: TenantStore, clock: Clock) -> None:
    if not store.patch_tenant(
        tenant_id, {"api_key_hash": None, "api_key_expires_at": None}, clock()
    ):
        raise tenant_not_found(tenant_id)


@dataclass(frozen=True)
class TenantSync:
    """One tenant's delivery report sync, as GET /tenants/sync-status shows it."""

    id: str
    name: str | None
    active: bool
    client_base_url: str | None
    last_sync_ts: int | None
    next_sync_due: int
    in_dnd: bool


@dataclass(frozen=True)
class SyncStatus:
    sync_interval_seconds: int
    tenants: list[TenantSync]


def sync_status(store: TenantStore, clock: Clock) -> SyncStatus:
    now = clock()
    rows = []
    for tenant in store.list_tenants():
        due = tenant.last_sync_ts + SYNC_INTERVAL_SECONDS if tenant.last_sync_ts else now
        in_dnd = tenant.next_sync_after is not None and tenant.next_sync_after > now
        if tenant.next_sync_after is not None and in_dnd:
            due = max(due, tenant.next_sync_after)
        rows.append(
            TenantSync(
                id=tenant.id,
                name=tenant.name,
                active=tenant.active,
                client_base_url=tenant.client_base_url,
                last_sync_ts=int(tenant.last_sync_ts) if tenant.last_sync_ts else None,
                next_sync_due=int(due),
                in_dnd=in_dnd,
            )
        )
    return SyncStatus(sync_interval_seconds=SYNC_INTERVAL_SECONDS, tenants=rows)
