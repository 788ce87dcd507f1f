"""The bodies the api accepts, as Powertools validates them (and /openapi.json documents them).

The message, account and tenant bodies carry the domain's own rules and stay beside them; they
are named here so the handler finds every body in one place."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mailproxy.domain.account import AccountChange
from mailproxy.domain.message import AddMessagesRequest, MessageKey
from mailproxy.domain.tenant import TenantIn, TenantUpdate

__all__ = [
    "MAX_IDS_PER_REQUEST",
    "AccountChange",
    "AddMessagesRequest",
    "CleanupRequest",
    "DeleteMessagesRequest",
    "TenantIn",
    "TenantUpdate",
]

MAX_IDS_PER_REQUEST = 1000


class DeleteMessagesRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    ids: list[MessageKey] = Field(default_factory=list, max_length=MAX_IDS_PER_REQUEST)


class CleanupRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    older_than_seconds: int | None = Field(default=None, ge=0)
