"""Names and shapes of every AWS resource the proxy uses.

Plain Python with no CDK import: the CDK constructs and local mode both read this module, so a
table or queue is described once. The Lambdas never import it; they receive the physical names
in one environment variable (see `mailproxy.config.RESOURCES_ENV`), written by whoever created
the resources from these descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailproxy.config import RESOURCES_ENV, ResourceNames
from mailproxy.domain.large_files import MAX_FILE_TTL_DAYS, ttl_prefix
from mailproxy.domain.priority import Priority
from mailproxy.store.payloads import PAYLOADS_PREFIX

__all__ = [
    "BUCKETS",
    "BUCKET_LIFECYCLE",
    "KEYS",
    "LAMBDA_ENVIRONMENT",
    "PAYLOAD_EXPIRY_DAYS",
    "QUEUES",
    "RESOURCES_ENV",
    "TABLES",
    "WAKEUPS_QUEUE",
    "ExpiryRule",
    "IndexSpec",
    "QueueSpec",
    "TableSpec",
    "resource_names",
]


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str | None = None
    # DynamoDB attribute types of the key attributes that are not strings ("N").
    key_types: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TableSpec:
    logical_name: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    indexes: tuple[IndexSpec, ...] = ()

    def physical_name(self, prefix: str) -> str:
        return f"{prefix}-{self.logical_name}"


@dataclass(frozen=True)
class QueueSpec:
    priority: Priority
    # Upper bound of concurrent sender invocations for this queue: priority buys senders, so
    # a backlog of newsletters never delays a password reset.
    max_concurrency: int
    visibility_timeout_seconds: int = 360
    max_receive_count: int = 5

    @property
    def logical_name(self) -> str:
        return f"queue-{self.priority.label}"

    def physical_name(self, prefix: str) -> str:
        return f"{prefix}-{self.priority.label}"

    def dlq_physical_name(self, prefix: str) -> str:
        return f"{prefix}-{self.priority.label}-dlq"


TABLES: dict[str, TableSpec] = {
    "tenants": TableSpec(
        "tenants",
        partition_key="id",
        # Sparse: only tenants holding an API key; a tenant token is found by its hash.
        indexes=(IndexSpec("by-api-key-hash", partition_key="api_key_hash"),),
    ),
    "accounts": TableSpec(
        "accounts",
        partition_key="tenant_id",
        sort_key="id",
        indexes=(IndexSpec("by-account-id", partition_key="id"),),
    ),
    "messages": TableSpec(
        "messages",
        partition_key="tenant_id",
        sort_key="id",
        ttl_attribute="expires_at",
        # Sparse: messages the scheduler must look at, by when (a send later than SQS can
        # hold, a retry or deferral of more than 15 minutes, a message not yet confirmed on
        # its queue, a message under a sender's lease).
        indexes=(
            IndexSpec(
                "by-due", partition_key="due_shard", sort_key="due_at", key_types={"due_at": "N"}
            ),
        ),
    ),
    # The payload apart from the state: a status change rewrites a small item, not the body.
    "bodies": TableSpec(
        "bodies", partition_key="tenant_id", sort_key="id", ttl_attribute="expires_at"
    ),
    # Delivery counters for GET /metrics, per (tenant, account, metric), added to once per
    # sender invocation rather than once per message.
    "metrics": TableSpec("metrics", partition_key="tenant_id", sort_key="series"),
    # Rate-limit windows: one item per (tenant, account, window) holding the counts of its
    # recent sub-buckets, expired by TTL once none of them counts any more.
    "counters": TableSpec("counters", partition_key="key", ttl_attribute="expires_at"),
    "events": TableSpec(
        "events",
        partition_key="tenant_id",
        sort_key="event_id",
        ttl_attribute="expires_at",
        # Sparse: a tenant's events not yet reported, in event order.
        indexes=(IndexSpec("unreported", partition_key="unreported", sort_key="event_id"),),
    ),
    # Download links of large attachments (GET /files/{token}), keyed by the token's SHA-256,
    # expired by TTL when the link is (the API checks expires_at too: TTL deletion lags).
    "files": TableSpec("files", partition_key="token_hash", ttl_attribute="expires_at"),
    # The instance's own few items, by key: its settings ("instance"), the bounce reader's
    # cursor per mailbox ("bounce-cursor#<mailbox>") and its run lease ("bounce-lease").
    "settings": TableSpec("settings", partition_key="key"),
    # The command log: every state-changing API call, by day and shard ("2026-12-02#3"),
    # sorted by id (time), kept for the retention period; sparse by tenant.
    "commands": TableSpec(
        "commands",
        partition_key="partition",
        sort_key="id",
        ttl_attribute="expires_at",
        indexes=(IndexSpec("by-tenant", partition_key="tenant_id", sort_key="id"),),
    ),
}

QUEUES: dict[Priority, QueueSpec] = {
    Priority.IMMEDIATE: QueueSpec(Priority.IMMEDIATE, max_concurrency=20),
    Priority.HIGH: QueueSpec(Priority.HIGH, max_concurrency=10),
    Priority.MEDIUM: QueueSpec(Priority.MEDIUM, max_concurrency=5),
    Priority.LOW: QueueSpec(Priority.LOW, max_concurrency=2),
}

# Wake-up signals for the reporter (after deliveries, on run-now): its event source.
WAKEUPS_QUEUE = "wakeups"

BUCKETS: dict[str, str] = {"payloads": "payloads"}


@dataclass(frozen=True)
class ExpiryRule:
    """An S3 lifecycle rule: objects under `prefix` (every object: None) are deleted `days`
    after they were written; incomplete multipart uploads are aborted after a day."""

    rule_id: str
    prefix: str | None
    days: int | None = None
    abort_incomplete_uploads: bool = False


# Bodies and attachments too big for an item live only as long as a message can wait.
PAYLOAD_EXPIRY_DAYS = 8

# Lifecycle rules go by prefix: a large file that lives N days is written under the prefix of
# N days (mailproxy.domain.large_files.ttl_prefix), whose rule deletes it when its link dies.
BUCKET_LIFECYCLE: dict[str, tuple[ExpiryRule, ...]] = {
    "payloads": (
        ExpiryRule("abort-incomplete-uploads", None, abort_incomplete_uploads=True),
        ExpiryRule("expire-payloads", PAYLOADS_PREFIX, PAYLOAD_EXPIRY_DAYS),
        *(
            ExpiryRule(f"expire-large-files-{days}d", ttl_prefix(days), days)
            for days in range(1, MAX_FILE_TTL_DAYS + 1)
        ),
    )
}

# KMS keys, by role: "secrets" encrypts SMTP passwords and tenants' client credentials.
KEYS: dict[str, str] = {"secrets": "secrets"}

# Set on every Lambda (and on bench/cold_start.py's interpreters, to measure the same import).
# The proxy uses no pydantic plugin; without this, the first model pydantic builds makes it
# read the metadata of every installed distribution, looking for one: file I/O at import.
LAMBDA_ENVIRONMENT: dict[str, str] = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}


def resource_names(
    prefix: str,
    queue_urls: dict[Priority | str, str],
    bucket_names: dict[str, str],
    key_ids: dict[str, str],
) -> ResourceNames:
    """The runtime's view of the resources, once they exist under `prefix`."""
    return ResourceNames(
        tables={key: spec.physical_name(prefix) for key, spec in TABLES.items()},
        queues={
            key.label if isinstance(key, Priority) else key: url for key, url in queue_urls.items()
        },
        buckets=dict(bucket_names),
        keys=dict(key_ids),
    )
