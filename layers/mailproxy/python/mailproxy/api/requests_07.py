"""The bodies of the genro-mail-proxy 0.7 routes (mailproxy/api/routes_07.py). 0.7 posts a
method's arguments as one JSON object; where an argument is a 0.6 body's field, it keeps that
field's rules (the same type, so the same 422)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mailproxy.domain.message import BatchCode, MessageKey
from mailproxy.domain.tenant import TenantId, TenantUpdate

from .requests import MAX_IDS_PER_REQUEST


class Body07(BaseModel):
    # 0.7's clients send every argument, the ones left at None too.
    model_config = ConfigDict(extra="ignore", defer_build=True)


class RunNow(Body07):
    tenant_id: TenantId | None = None


class SuspensionChange(Body07):
    tenant_id: TenantId
    batch_code: BatchCode | None = None


class TenantRef(Body07):
    tenant_id: TenantId


class NewApiKeyRequest(Body07):
    tenant_id: TenantId
    expires_at: int | None = Field(default=None, ge=0)


class TenantUpdate07(TenantUpdate):
    """TenantUpdate, with the tenant named in the body. 0.7 sends the fields it leaves alone
    as null: those are left out before the update (0.7 ignores None values too)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    tenant_id: TenantId


class DeleteBatch(Body07):
    tenant_id: TenantId
    ids: list[MessageKey] = Field(max_length=MAX_IDS_PER_REQUEST)


class DeleteByPk(Body07):
    message_pk: str = Field(min_length=1, max_length=600)


class AccountRef(Body07):
    tenant_id: TenantId
    account_id: MessageKey


class InstanceUpdate(Body07):
    name: str | None = Field(default=None, max_length=255)
    # 0.7 also sets these; this proxy's admin token is its deployment's secret, and it has
    # one edition: a body that asks for either is refused, not silently half applied.
    api_token: Any = None
    edition: Any = None


class BounceConfigChange(Body07):
    """The bounce settings of PUT /instance without their bounce_ prefix. Checked by the
    rules of InstanceChange itself (the route moves each field over)."""

    enabled: bool | None = None
    imap_host: str | None = None
    imap_port: int | None = None
    imap_user: str | None = None
    imap_password: str | None = None
    imap_folder: str | None = None
    imap_ssl: bool | None = None
    poll_interval: int | None = None
    return_path: str | None = None


class CommandPurge(Body07):
    threshold_ts: int
