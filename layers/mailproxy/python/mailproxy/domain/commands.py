"""Bodies of the /commands endpoints other than add-messages, and the error body shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mailproxy.domain.message import MessageKey

MAX_IDS_PER_REQUEST = 1000


class DeleteMessagesRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    ids: list[MessageKey] = Field(default_factory=list, max_length=MAX_IDS_PER_REQUEST)


class CleanupRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    older_than_seconds: int | None = Field(default=None, ge=0)


class ErrorBody(BaseModel):
    """Every error answer: a text, or (422) the list of fields at fault."""

    model_config = ConfigDict(defer_build=True)

    detail: Any
