"""The message a client submits, validated as the HTTP contract (SPEC.md) describes it."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from mailproxy.domain.priority import Priority

MAX_MESSAGES_PER_REQUEST = 1000
MAX_BATCH_CODE_LENGTH = 64


def _address_list(value: Any) -> Any:
    """Accept a list or a comma-separated string; blanks are dropped."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [item.strip() if isinstance(item, str) else item for item in value]
    return value


AddressList = Annotated[list[str], BeforeValidator(_address_list)]
PriorityValue = int | str


def parse_priority(value: PriorityValue | None) -> Priority | None:
    return None if value is None else Priority.parse(value)


class AttachmentAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["none", "bearer", "basic"] = "none"
    token: str | None = None
    user: str | None = None
    password: str | None = None


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    storage_path: str = Field(min_length=1)
    mime_type: str | None = None
    fetch_mode: Literal["base64", "http_url", "endpoint", "s3"] | None = None
    content_md5: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{32}$")
    auth: AttachmentAuth | None = None

    @model_validator(mode="after")
    def _no_local_files(self) -> Attachment:
        if self.fetch_mode is None and self.storage_path.startswith("/"):
            raise ValueError(
                "local file paths are not served by this proxy: use base64:, http(s)://, "
                "s3:// or an endpoint storage_path"
            )
        return self

    @property
    def resolved_fetch_mode(self) -> str:
        if self.fetch_mode:
            return self.fetch_mode
        path = self.storage_path
        if path.startswith("base64:"):
            return "base64"
        if path.startswith(("http://", "https://")):
            return "http_url"
        if path.startswith("s3://"):
            return "s3"
        return "endpoint"


_MD5_MARKER = re.compile(r"_?\{MD5:[0-9a-fA-F]{32}\}")


def delivered_filename(filename: str) -> str:
    """`report_{MD5:<hash>}.pdf` is delivered as `report.pdf`: the marker is a cache key."""
    return _MD5_MARKER.sub("", filename)


class Message(BaseModel):
    """One message of POST /commands/add-messages; unknown top-level fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1, max_length=255)
    tenant_id: str | None = Field(default=None, min_length=1)
    account_id: str | None = None
    from_addr: str = Field(
        min_length=1,
        validation_alias=AliasChoices("from", "from_addr"),
        serialization_alias="from",
    )
    to: AddressList = Field(min_length=1)
    cc: AddressList | None = None
    bcc: AddressList | None = None
    reply_to: str | None = None
    return_path: str | None = None
    subject: str = Field(min_length=1)
    body: str = ""
    content_type: Literal["plain", "html"] = "plain"
    headers: dict[str, str] | None = None
    message_id: str | None = None
    attachments: list[Attachment] | None = None
    priority: PriorityValue | None = None
    deferred_ts: float | None = None
    batch_code: str | None = Field(default=None, max_length=MAX_BATCH_CODE_LENGTH)

    @field_validator("headers", mode="before")
    @classmethod
    def _header_values_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: item if isinstance(item, str) else str(item)
                for key, item in value.items()
                if item is not None
            }
        return value

    @field_validator("priority")
    @classmethod
    def _known_priority(cls, value: PriorityValue | None) -> PriorityValue | None:
        parse_priority(value)
        return value

    def effective_priority(self, default: Priority) -> Priority:
        # Not `or default`: Priority.IMMEDIATE is 0, which is falsy.
        parsed = parse_priority(self.priority)
        return default if parsed is None else parsed

    @property
    def recipients(self) -> list[str]:
        """Everyone in the envelope: To, Cc and Bcc."""
        return [*self.to, *(self.cc or []), *(self.bcc or [])]

    def as_submitted(self) -> dict[str, Any]:
        """The payload as stored and shown back: contract names, nulls left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class AddMessagesRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: list[Message]
    default_priority: PriorityValue | None = None

    @field_validator("default_priority")
    @classmethod
    def _known_priority(cls, value: PriorityValue | None) -> PriorityValue | None:
        parse_priority(value)
        return value
