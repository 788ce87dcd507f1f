"""A tenant: one application with its own accounts, messages, API key and sync endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from mailproxy.domain.large_files import LargeFileConfig, LargeFileConfigPatch

DEFAULT_SYNC_PATH = "/mail-proxy/sync"
DEFAULT_ATTACHMENT_PATH = "/mail-proxy/attachments"
# Tenant ids are keys and URL path segments: a short, safe alphabet.
TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$"
TenantId = Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]
ALL_BATCHES = "*"


class ClientAuth(BaseModel):
    """How the proxy authenticates to the tenant's own endpoints (sync, attachments)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    method: Literal["none", "bearer", "basic"] = "none"
    token: SecretStr | None = Field(default=None, min_length=1, max_length=4096)
    user: str | None = Field(default=None, min_length=1, max_length=256)
    password: SecretStr | None = Field(default=None, max_length=4096)

    @model_validator(mode="after")
    def _complete(self) -> ClientAuth:
        if self.method == "bearer" and not self.token:
            raise ValueError("bearer auth needs a token")
        if self.method == "basic" and (not self.user or self.password is None):
            raise ValueError("basic auth needs a user and a password")
        return self

    @property
    def secret(self) -> str | None:
        """The part of the credentials that is sealed before it is stored."""
        chosen = {"bearer": self.token, "basic": self.password}.get(self.method)
        return chosen.get_secret_value() if chosen is not None else None


@dataclass(frozen=True)
class StoredClientAuth:
    """client_auth as kept: the method and user in the clear, the token or password sealed."""

    method: str = "none"
    user: str | None = None
    sealed_secret: str | None = None


def _path(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise ValueError("must start with /")
    return value


class TenantFields(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    name: str | None = Field(default=None, max_length=256)
    client_base_url: str | None = Field(default=None, max_length=2048)
    client_sync_path: str | None = Field(default=None, max_length=1024)
    client_attachment_path: str | None = Field(default=None, max_length=1024)
    client_auth: ClientAuth | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _paths(self) -> TenantFields:
        for name in ("client_sync_path", "client_attachment_path"):
            try:
                _path(getattr(self, name))
            except ValueError as error:
                raise ValueError(f"{name} {error}") from None
        return self


class TenantIn(TenantFields):
    """POST /tenant: create or replace."""

    id: TenantId
    active: bool | None = True
    large_file_config: LargeFileConfig | None = None


class TenantUpdate(TenantFields):
    """PUT /tenant/{id}: only the fields given change; inside large_file_config too (null
    removes it)."""

    large_file_config: LargeFileConfigPatch | None = None


@dataclass(frozen=True)
class Tenant:
    id: str
    created_at: float
    updated_at: float
    name: str | None = None
    client_base_url: str | None = None
    client_sync_path: str = DEFAULT_SYNC_PATH
    client_attachment_path: str = DEFAULT_ATTACHMENT_PATH
    client_auth: StoredClientAuth = field(default_factory=StoredClientAuth)
    active: bool = True
    suspended_batches: frozenset[str] = frozenset()
    api_key_hash: str | None = None
    api_key_expires_at: float | None = None
    last_sync_ts: float | None = None
    next_sync_after: float | None = None
    large_file_config: LargeFileConfig | None = None

    def is_suspended(self, batch_code: str | None) -> bool:
        return ALL_BATCHES in self.suspended_batches or (
            batch_code is not None and batch_code in self.suspended_batches
        )


# The fields a client sets on a tenant (POST /tenant replaces all of them).
TENANT_FIELDS = (
    "name",
    "client_base_url",
    "client_sync_path",
    "client_attachment_path",
    "client_auth",
    "active",
    "large_file_config",
)


def suspend(current: frozenset[str], batch_code: str | None) -> frozenset[str]:
    """Suspending everything replaces any per-batch suspension."""
    if batch_code is None or batch_code == ALL_BATCHES:
        return frozenset({ALL_BATCHES})
    return current | {batch_code}


class ActivationRefused(ValueError):
    pass


def activate(current: frozenset[str], batch_code: str | None) -> frozenset[str]:
    if batch_code is None or batch_code == ALL_BATCHES:
        return frozenset()
    if ALL_BATCHES in current:
        raise ActivationRefused(
            f"Cannot activate batch '{batch_code}' while all batches are suspended; "
            "activate all first"
        )
    return current - {batch_code}
