"""Who is calling: the X-API-Token header, checked against the admin token or a tenant key.

Tenant keys are generated here, shown once, and kept only as SHA-256 hashes; every comparison
is made in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from mailproxy.domain.clock import Clock
from mailproxy.domain.tenant import Tenant

TOKEN_HEADER = "x-api-token"  # noqa: S105 (a header name)
INVALID_TOKEN = "Invalid or missing API token"  # noqa: S105 (an error text)
WRONG_TENANT = "Token not authorized for this tenant"
ADMIN_ONLY = "Admin token required"


class Unauthorized(Exception):
    def __init__(self, detail: str = INVALID_TOKEN) -> None:
        super().__init__(detail)
        self.detail = detail


class Forbidden(Exception):
    def __init__(self, detail: str = ADMIN_ONLY) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Principal:
    """The caller: the admin (every tenant) or one tenant."""

    tenant_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None


ADMIN = Principal()


def new_api_key() -> str:
    return secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def authenticate(
    presented: str | None,
    admin_token: str | None,
    tenant_for_key: Callable[[str], Tenant | None],
    *,
    clock: Clock,
) -> Principal:
    """The caller behind a token. Without a configured admin token the admin cannot log in:
    the proxy never runs open by accident."""
    if not presented:
        raise Unauthorized()
    if admin_token and hmac.compare_digest(presented.encode(), admin_token.encode()):
        return ADMIN
    key_hash = hash_api_key(presented)
    tenant = tenant_for_key(key_hash)
    if (
        tenant is None
        or tenant.api_key_hash is None
        or not hmac.compare_digest(tenant.api_key_hash, key_hash)
        or (tenant.api_key_expires_at is not None and tenant.api_key_expires_at <= clock())
    ):
        raise Unauthorized()
    return Principal(tenant_id=tenant.id)


def require_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise Forbidden()


def scoped_tenant(caller: Principal, tenant_id: str | None) -> str | None:
    """The tenant a request is about: the one named, else the caller's own (None: every
    tenant, for the admin). A tenant naming another tenant is refused."""
    if caller.is_admin:
        return tenant_id
    if tenant_id is not None and tenant_id != caller.tenant_id:
        raise Unauthorized(WRONG_TENANT)
    return caller.tenant_id
