"""pynamodb models, bound to this environment's physical table names on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from mailproxy.timeouts import AWS_CONNECT_SECONDS, AWS_READ_SECONDS


@dataclass(frozen=True)
class Models:
    # The classes are made per set of table names at run time, so their attributes are
    # known to pynamodb, not to the type checker.
    tenant: Any
    account: Any
    message: Any
    body: Any
    event: Any
    counter: Any
    metric: Any
    file: Any
    setting: Any
    connection: Connection


def _meta(table_name: str) -> Any:
    return type(
        "Meta",
        (),
        {
            "table_name": table_name,
            "connect_timeout_seconds": AWS_CONNECT_SECONDS,
            "read_timeout_seconds": AWS_READ_SECONDS,
            "max_retry_attempts": 3,
        },
    )


@lru_cache(maxsize=4)
def bind_models(
    tenants: str,
    accounts: str,
    messages: str,
    bodies: str,
    events: str,
    counters: str,
    metrics: str,
    files: str,
    settings: str,
) -> Models:
    """Model classes for one set of table names (one per environment, cached)."""

    class TenantByKeyIndex(GlobalSecondaryIndex["TenantModel"]):
        Meta = type("Meta", (), {"index_name": "by-api-key-hash", "projection": AllProjection()})
        api_key_hash = UnicodeAttribute(hash_key=True)

    class TenantModel(Model):
        Meta = _meta(tenants)
        id = UnicodeAttribute(hash_key=True)
        name = UnicodeAttribute(null=True)
        client_base_url = UnicodeAttribute(null=True)
        client_sync_path = UnicodeAttribute(null=True)
        client_attachment_path = UnicodeAttribute(null=True)
        client_auth_method = UnicodeAttribute(null=True)
        client_auth_user = UnicodeAttribute(null=True)
        # The token or password of client_auth, sealed with KMS.
        client_secret = UnicodeAttribute(null=True)
        active = BooleanAttribute(default=True)
        suspended_batches = ListAttribute(of=UnicodeAttribute, null=True)
        api_key_hash = UnicodeAttribute(null=True)
        api_key_expires_at = NumberAttribute(null=True)
        last_sync_ts = NumberAttribute(null=True)
        next_sync_after = NumberAttribute(null=True)
        # One delivery-report sync in flight per tenant: whoever holds the lease.
        sync_lease_until = NumberAttribute(null=True)
        sync_failures = NumberAttribute(null=True)
        sync_retry_after = NumberAttribute(null=True)
        # large_file_config as validated: every field with its value.
        large_file_config = JSONAttribute(null=True)
        created_at = NumberAttribute()
        updated_at = NumberAttribute()
        by_key = TenantByKeyIndex()

    class AccountByIdIndex(GlobalSecondaryIndex["AccountModel"]):
        Meta = type("Meta", (), {"index_name": "by-account-id", "projection": AllProjection()})
        id = UnicodeAttribute(hash_key=True)

    class AccountModel(Model):
        Meta = _meta(accounts)
        tenant_id = UnicodeAttribute(hash_key=True)
        id = UnicodeAttribute(range_key=True)
        data = JSONAttribute()
        # The SMTP password, sealed with KMS; never stored or returned in the clear.
        secret = UnicodeAttribute(null=True)
        created_at = NumberAttribute()
        updated_at = NumberAttribute()
        by_id = AccountByIdIndex()

    class MessageByDueIndex(GlobalSecondaryIndex["MessageModel"]):
        Meta = type("Meta", (), {"index_name": "by-due", "projection": AllProjection()})
        due_shard = UnicodeAttribute(hash_key=True)
        due_at = NumberAttribute(range_key=True)

    class EventUnreportedIndex(GlobalSecondaryIndex["EventModel"]):
        Meta = type("Meta", (), {"index_name": "unreported", "projection": AllProjection()})
        unreported = UnicodeAttribute(hash_key=True)
        event_id = UnicodeAttribute(range_key=True)

    class MessageModel(Model):
        """The small, often-written state of a message; the payload lives in BodyModel."""

        Meta = _meta(messages)
        tenant_id = UnicodeAttribute(hash_key=True)
        id = UnicodeAttribute(range_key=True)
        status = UnicodeAttribute()
        priority = NumberAttribute()
        ticket = UnicodeAttribute()
        created_at = NumberAttribute()
        updated_at = NumberAttribute()
        account_id = UnicodeAttribute(null=True)
        batch_code = UnicodeAttribute(null=True)
        deferred_ts = NumberAttribute(null=True)
        sent_ts = NumberAttribute(null=True)
        error_ts = NumberAttribute(null=True)
        error = UnicodeAttribute(null=True)
        reported_ts = NumberAttribute(null=True)
        attempts = NumberAttribute(default=0)
        retries = NumberAttribute(default=0)
        lease_until = NumberAttribute(null=True)
        # The owner's proof: an outcome is written only by the sender holding this token.
        claim_token = UnicodeAttribute(null=True)
        # Recipients the server refused while it accepted the message for the others.
        refused = JSONAttribute(null=True)
        # On the by-due index while the scheduler must look at the message at due_at.
        due_shard = UnicodeAttribute(null=True)
        due_at = NumberAttribute(null=True)
        by_due = MessageByDueIndex()
        # Which body this state goes with; a sender that read another one does not claim.
        body_version = UnicodeAttribute(null=True)
        expires_at = NumberAttribute(null=True)
        # The bounces recorded on this message, by bounce_key (domain/bounces.py): a
        # notification read twice records one event.
        bounce_keys = UnicodeSetAttribute(null=True)

    class BodyModel(Model):
        """The payload as submitted: written on submission, read by the sender, never updated."""

        Meta = _meta(bodies)
        tenant_id = UnicodeAttribute(hash_key=True)
        id = UnicodeAttribute(range_key=True)
        version = UnicodeAttribute(null=True)
        # Inline when small (zlib-compressed JSON in payload_zlib; plain JSON in payload, as
        # earlier versions wrote it); a large payload lives in the payload bucket under s3_key.
        payload = JSONAttribute(null=True)
        payload_zlib = BinaryAttribute(null=True, legacy_encoding=False)
        s3_key = UnicodeAttribute(null=True)
        expires_at = NumberAttribute(null=True)

    class CounterModel(Model):
        """One rate-limit window of one account: sends per recent sub-bucket (keyed by the
        sub-bucket's index, as text), and a version that moves whenever a sub-bucket is
        started (domain/rate_limit.py says why that is enough)."""

        Meta = _meta(counters)
        key = UnicodeAttribute(hash_key=True)
        buckets = MapAttribute(null=True)  # type: ignore[var-annotated]
        version = NumberAttribute(null=True)
        expires_at = NumberAttribute(null=True)

    class EventModel(Model):
        Meta = _meta(events)
        tenant_id = UnicodeAttribute(hash_key=True)
        event_id = UnicodeAttribute(range_key=True)
        message_id = UnicodeAttribute()
        event_type = UnicodeAttribute()
        event_ts = NumberAttribute()
        description = UnicodeAttribute(null=True)
        metadata = JSONAttribute(null=True)
        reported_ts = NumberAttribute(null=True)
        expires_at = NumberAttribute(null=True)
        # The tenant id while the event waits to be reported (the sparse index's key).
        unreported = UnicodeAttribute(null=True)
        by_unreported = EventUnreportedIndex()

    class MetricModel(Model):
        """One counter of GET /metrics: series is "<account_id>#<metric name>"."""

        Meta = _meta(metrics)
        tenant_id = UnicodeAttribute(hash_key=True)
        series = UnicodeAttribute(range_key=True)
        value = NumberAttribute(default=0)

    class FileModel(Model):
        """A download link of a large attachment: the token's SHA-256, never the token."""

        Meta = _meta(files)
        token_hash = UnicodeAttribute(hash_key=True)
        bucket = UnicodeAttribute()
        key = UnicodeAttribute()
        filename = UnicodeAttribute()
        content_type = UnicodeAttribute()
        size = NumberAttribute()
        tenant_id = UnicodeAttribute()
        message_id = UnicodeAttribute()
        created_at = NumberAttribute()
        expires_at = NumberAttribute()

    class SettingModel(Model):
        """One of the instance's items (infra/resources.py names them); `data` is the item's
        JSON, `secret` a sealed password."""

        Meta = _meta(settings)
        key = UnicodeAttribute(hash_key=True)
        data = JSONAttribute(null=True)
        secret = UnicodeAttribute(null=True)
        # The bounce cursor's folder generation and last UID, and when the reader last ran.
        uidvalidity = NumberAttribute(null=True)
        last_uid = NumberAttribute(null=True)
        last_run_at = NumberAttribute(null=True)
        # Why the last run failed; absent when it went through.
        last_error = UnicodeAttribute(null=True)
        # The bounce run's lease: who holds it, until when.
        owner = UnicodeAttribute(null=True)
        lease_until = NumberAttribute(null=True)
        created_at = NumberAttribute(null=True)
        updated_at = NumberAttribute(null=True)

    return Models(
        tenant=TenantModel,
        account=AccountModel,
        message=MessageModel,
        body=BodyModel,
        event=EventModel,
        counter=CounterModel,
        metric=MetricModel,
        file=FileModel,
        setting=SettingModel,
        connection=Connection(
            connect_timeout_seconds=AWS_CONNECT_SECONDS,
            read_timeout_seconds=AWS_READ_SECONDS,
        ),
    )
