"""A tenant's SMTP account, as POST /account receives it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, create_model
from pydantic_core import PydanticCustomError

from mailproxy.domain.tenant import TenantId

DEFAULT_CONNECTION_TTL_SECONDS = 300
# Connections to the account's server a sender may hold at once, each sending a message of
# the batch alongside the others: the SMTP waits of a wave overlap.
DEFAULT_MAX_CONNECTIONS = 4
MAX_MAX_CONNECTIONS = 32


class TlsMode(StrEnum):
    PLAIN = "plain"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


def tls_mode(use_tls: bool | None, port: int) -> TlsMode:
    """SPEC.md's use_tls: null means implicit TLS on 465 and plain elsewhere; true means
    implicit TLS on 465 and STARTTLS elsewhere; false means plain."""
    if use_tls is False:
        return TlsMode.PLAIN
    if port == 465:
        return TlsMode.IMPLICIT
    return TlsMode.STARTTLS if use_tls else TlsMode.PLAIN


LIMIT_BEHAVIORS = ("defer", "reject", "error")


def _limit_behavior(value: Any) -> Any:
    """The architecture page's word for reject is "error"; an unknown word lists them all."""
    if value is None:
        return "defer"  # null: the default
    if value == "error":
        return "reject"
    if value not in LIMIT_BEHAVIORS:
        raise PydanticCustomError(
            "limit_behavior",
            "limit_behavior is one of {accepted} (error is the same as reject)",
            {"accepted": ", ".join(LIMIT_BEHAVIORS)},
        )
    return value


class Account(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    id: str = Field(min_length=1, max_length=255)
    tenant_id: TenantId | None = None
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    user: str | None = None
    # A SecretStr: no repr, log line or debug dump of the model shows it.
    password: SecretStr | None = None
    use_tls: bool | None = None
    ttl: int = Field(default=DEFAULT_CONNECTION_TTL_SECONDS, ge=0)
    # Beyond the contract: pooled connections to this account's server at once, per sender
    # environment (a provider's limit on concurrent sessions is per login).
    max_connections: int = Field(default=DEFAULT_MAX_CONNECTIONS, ge=1, le=MAX_MAX_CONNECTIONS)
    limit_per_second: int | None = Field(default=None, ge=0)
    limit_per_minute: int | None = Field(default=None, ge=0)
    limit_per_hour: int | None = Field(default=None, ge=0)
    limit_per_day: int | None = Field(default=None, ge=0)
    limit_behavior: Annotated[Literal["defer", "reject"], BeforeValidator(_limit_behavior)] = (
        "defer"
    )
    batch_size: int | None = Field(default=None, ge=1)
    # Beyond the contract: what a possibly delivered message (connection lost after its
    # data, or a sender gone after the server's 250) does next; a retried copy keeps its
    # Message-ID, so receivers can drop it.
    on_ambiguous: Literal["retry", "fail"] = "retry"
    # Beyond the contract: seconds before each retry of a temporary failure.
    retry_schedule: list[Annotated[int, Field(ge=1, le=86400)]] | None = Field(
        default=None, min_length=1, max_length=10
    )

    @property
    def tls_mode(self) -> TlsMode:
        return tls_mode(self.use_tls, self.port)


def _every_field_but_id_optional(model: type[BaseModel]) -> type[BaseModel]:
    """POST /account's body: an Account whose fields may each be left out (an existing account
    keeps what is not given). Derived from Account, so the two never disagree on a rule."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name == "id":
            fields[name] = (info.annotation, info)
            continue
        optional = copy.copy(info)
        optional.default = None
        optional.default_factory = None
        fields[name] = (info.annotation | None, optional)  # type: ignore[operator]
    return create_model("AccountChange", __config__=model.model_config, **fields)


AccountChange = _every_field_but_id_optional(Account)
NEW_ACCOUNT_FIELDS = ("host", "port")  # what an account that does not exist yet must give


def changed_fields(change: BaseModel) -> dict[str, Any]:
    """The fields a POST /account body gives (null included: it clears a limit), but the keys."""
    return {
        name: getattr(change, name)
        for name in change.model_fields_set
        if name not in ("id", "tenant_id")
    }


@dataclass(frozen=True)
class StoredAccount:
    account: Account  # without its password
    created_at: float
    updated_at: float
    sealed_password: str | None = None
