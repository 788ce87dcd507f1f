"""Who is calling: the X-API-Token header checked against the admin token."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

TOKEN_HEADER = "x-api-token"  # noqa: S105 (a header name)
INVALID_TOKEN = "Invalid or missing API token"  # noqa: S105 (an error text)


class Unauthorized(Exception):
    def __init__(self, detail: str = INVALID_TOKEN) -> None:
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


def authenticate(presented: str | None, admin_token: str | None) -> Principal:
    """The caller behind a token. Without a configured admin token nobody gets in: the
    proxy never runs open by accident."""
    if admin_token and presented and hmac.compare_digest(presented.encode(), admin_token.encode()):
        return ADMIN
    raise Unauthorized()
