"""Settings of one execution environment, read from its environment variables once.

Every Lambda (and local mode) receives the physical names of its tables, queues and buckets in
one JSON variable, `MAILPROXY_RESOURCES`, so the runtime and the infrastructure share a single
description (`infra/resources.py`) instead of one variable per resource.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache

RESOURCES_ENV = "MAILPROXY_RESOURCES"
ADMIN_TOKEN_ENV = "MAILPROXY_ADMIN_TOKEN"  # noqa: S105 (a variable name)
ADMIN_TOKEN_SECRET_ENV = "MAILPROXY_ADMIN_TOKEN_SECRET_ARN"  # noqa: S105
LEASE_SECONDS_ENV = "MAILPROXY_LEASE_SECONDS"
ALLOW_LOOPBACK_URLS_ENV = "MAILPROXY_ALLOW_LOOPBACK_URLS"
ALLOW_PRIVATE_URLS_ENV = "MAILPROXY_ALLOW_PRIVATE_URLS"
S3_ATTACHMENT_BUCKETS_ENV = "MAILPROXY_S3_ATTACHMENT_BUCKETS"
# Where clients reach the API (https://..., no trailing path): download links are built on it.
PUBLIC_BASE_URL_ENV = "MAILPROXY_PUBLIC_BASE_URL"
# The bounce reader's function name: POST /instance/reload-bounce invokes it.
BOUNCER_FUNCTION_ENV = "MAILPROXY_BOUNCER_FUNCTION"


class ConfigurationError(RuntimeError):
    """The environment does not describe a usable deployment."""


@dataclass(frozen=True)
class ResourceNames:
    tables: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "tables": self.tables,
                "queues": self.queues,
                "buckets": self.buckets,
                "keys": self.keys,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ResourceNames:
        raw = json.loads(text)
        return cls(
            tables=dict(raw.get("tables", {})),
            queues=dict(raw.get("queues", {})),
            buckets=dict(raw.get("buckets", {})),
            keys=dict(raw.get("keys", {})),
        )

    def table(self, logical_name: str) -> str:
        try:
            return self.tables[logical_name]
        except KeyError:
            raise ConfigurationError(f"no table {logical_name!r} in {RESOURCES_ENV}") from None

    def key_id(self, role: str) -> str:
        try:
            return self.keys[role]
        except KeyError:
            raise ConfigurationError(f"no KMS key {role!r} in {RESOURCES_ENV}") from None

    def queue_url(self, priority_label: str) -> str:
        try:
            return self.queues[priority_label]
        except KeyError:
            raise ConfigurationError(f"no queue {priority_label!r} in {RESOURCES_ENV}") from None


@dataclass(frozen=True)
class Settings:
    resources: ResourceNames
    # Either the token itself (local mode) or the ARN of the secret holding it (AWS).
    admin_token: str | None
    admin_token_secret_arn: str | None
    # How long a sender owns a claimed message; matches the queues' visibility timeout.
    lease_seconds: int
    # Tenant-controlled URLs may reach these only when a deployment says so (local mode does
    # for loopback, where the user's own servers are).
    allow_loopback_urls: bool = False
    allow_private_urls: bool = False
    # Buckets from which s3:// attachments may be read; none unless configured.
    s3_attachment_buckets: frozenset[str] = frozenset()
    # The API's own URL as the world sees it; None: no download links can be made.
    public_base_url: str | None = None
    bouncer_function: str | None = None


def settings_from(environ: dict[str, str] | os._Environ[str]) -> Settings:
    raw = environ.get(RESOURCES_ENV)
    if not raw:
        raise ConfigurationError(f"{RESOURCES_ENV} is not set")
    return Settings(
        resources=ResourceNames.from_json(raw),
        admin_token=environ.get(ADMIN_TOKEN_ENV) or None,
        admin_token_secret_arn=environ.get(ADMIN_TOKEN_SECRET_ENV) or None,
        lease_seconds=int(environ.get(LEASE_SECONDS_ENV, "360")),
        allow_loopback_urls=_flag(environ.get(ALLOW_LOOPBACK_URLS_ENV)),
        allow_private_urls=_flag(environ.get(ALLOW_PRIVATE_URLS_ENV)),
        s3_attachment_buckets=frozenset(
            name.strip()
            for name in environ.get(S3_ATTACHMENT_BUCKETS_ENV, "").split(",")
            if name.strip()
        ),
        public_base_url=(environ.get(PUBLIC_BASE_URL_ENV) or "").strip().rstrip("/") or None,
        bouncer_function=environ.get(BOUNCER_FUNCTION_ENV) or None,
    )


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@lru_cache(maxsize=1)
def current_settings() -> Settings:
    """This environment's settings, read on first use (never at import)."""
    return settings_from(os.environ)
