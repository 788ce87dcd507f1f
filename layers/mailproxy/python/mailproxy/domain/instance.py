"""The instance settings (GET/PUT /instance): the proxy's name and its bounce mailbox.

SPEC.md, "Bounces (compatible)": `bounce_imap_password` is sealed like the SMTP passwords and
never returned. Here it is held only as the sealed text (StoredInstance.sealed_password); the
settings themselves never carry it, so no view of them can show it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, field_validator

DEFAULT_IMAP_PORT = 993
DEFAULT_FOLDER = "INBOX"
DEFAULT_POLL_INTERVAL_SECONDS = 60
# The minute tick comes a little early or late: a run due within this is run on this tick.
_TICK_SLACK_SECONDS = 5
# What an enabled bounce reader cannot work without (the password is checked apart: it is
# held sealed, not in the settings).
REQUIRED_WHEN_ENABLED = ("bounce_imap_host", "bounce_imap_user")
# An envelope sender: one address, no display name, no angle brackets, no spaces.
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:\[\]]+\.[^@\s<>\"(),;:\[\]]+$")


_BLANK_IS_NONE = ("name", "bounce_imap_host", "bounce_imap_user")


def _one_address(cls: Any, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None  # "" clears it
    if not _ADDRESS.match(value):
        raise ValueError("must be one e-mail address, like bounces@example.com")
    return value


def _blank_is_none(cls: Any, value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class InstanceSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    name: str | None = Field(default=None, max_length=255)
    bounce_enabled: bool = False
    bounce_imap_host: str | None = Field(default=None, min_length=1, max_length=255)
    bounce_imap_port: int = Field(default=DEFAULT_IMAP_PORT, ge=1, le=65535)
    bounce_imap_user: str | None = Field(default=None, min_length=1, max_length=255)
    bounce_imap_folder: str = Field(default=DEFAULT_FOLDER, min_length=1, max_length=255)
    # True: implicit TLS (IMAPS, 993); False: STARTTLS, which the server must offer (the
    # password never travels in clear: a server without STARTTLS fails the run).
    bounce_imap_ssl: bool = True
    # Seconds between two reads of the mailbox; the reader is woken once a minute, so less
    # than 60 means "every minute".
    bounce_poll_interval: int = Field(default=DEFAULT_POLL_INTERVAL_SECONDS, ge=1, le=86400)
    # The envelope sender (MAIL FROM) of outgoing mail, so bounces come to the mailbox.
    bounce_return_path: str | None = Field(default=None, max_length=320)
    created_at: float | None = None
    updated_at: float | None = None

    _return_path = field_validator("bounce_return_path")(_one_address)
    _blanks = field_validator(*_BLANK_IS_NONE, mode="before")(_blank_is_none)

    def public_view(self) -> dict[str, Any]:
        """What GET /instance shows: every setting (the password is not one of them)."""
        return self.model_dump(mode="json")

    @property
    def mailbox_key(self) -> str:
        """Names the bounce cursor: another host, user or folder starts afresh."""
        return (
            f"{self.bounce_imap_user or ''}@{self.bounce_imap_host or ''}:"
            f"{self.bounce_imap_port}/{self.bounce_imap_folder}"
        )


def _every_field_optional() -> type[BaseModel]:
    """PUT /instance's body: any subset of the settings, and the password (in clear, sealed
    before storage). Derived from InstanceSettings, so the two never disagree on a rule."""
    fields: dict[str, Any] = {}
    for name, info in InstanceSettings.model_fields.items():
        if name in ("created_at", "updated_at"):
            continue
        optional = copy.copy(info)
        optional.default = None
        optional.default_factory = None
        fields[name] = (info.annotation | None, optional)  # type: ignore[operator]
    # Left out: the stored one stays; "" removes it.
    fields["bounce_imap_password"] = (SecretStr | None, None)
    validators = {
        "_return_path": field_validator("bounce_return_path")(_one_address),
        "_blanks": field_validator(*_BLANK_IS_NONE, mode="before")(_blank_is_none),
    }
    return create_model(
        "InstanceChange",
        __config__=InstanceSettings.model_config,
        __validators__=validators,
        **fields,
    )


InstanceChange = _every_field_optional()


@dataclass(frozen=True)
class StoredInstance:
    settings: InstanceSettings
    sealed_password: str | None = None


@dataclass(frozen=True)
class BounceRunRecord:
    """When the bounce reader last ran on a mailbox, and why it failed if it did."""

    at: float
    error: str | None = None


def missing_when_enabled(settings: InstanceSettings, has_password: bool) -> list[str]:
    """The fields an enabled bounce reader lacks (none when disabled)."""
    if not settings.bounce_enabled:
        return []
    missing = [name for name in REQUIRED_WHEN_ENABLED if getattr(settings, name) is None]
    if not has_password:
        missing.append("bounce_imap_password")
    return missing


def bounce_due(last_run_at: float | None, interval_seconds: int, now: float) -> bool:
    """Whether the reader should read the mailbox now. A tick comes about every minute, a
    little early or late: a run due within the next few seconds runs on this one."""
    if last_run_at is None:
        return True
    return now - last_run_at >= interval_seconds - _TICK_SLACK_SECONDS

