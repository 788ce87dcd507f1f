"""What the api answers, as pydantic models: each route declares its model as its return
type, so /openapi.json documents it, and the builders here turn the services' typed results
into them.

SPEC.md: fields that are null are left out. Every answer model drops its own null fields when
serialized (a nested answer model drops its own); a free-form dict inside one (a message's
payload, an event's metadata) is shown as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from mailproxy.domain.account import Account, StoredAccount
from mailproxy.domain.command_log import CommandRecord
from mailproxy.domain.large_files import LargeFileConfig
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.status import MessageStatus
from mailproxy.domain.tenant import StoredClientAuth, Tenant

if TYPE_CHECKING:
    from mailproxy.service.tenants import SyncStatus as SyncState


class ErrorBody(BaseModel):
    """Every error answer: a text, or (422) the list of fields at fault."""

    model_config = ConfigDict(defer_build=True)

    detail: Any


class Answer(BaseModel):
    """An answer whose null fields are left out. Without a return annotation on the
    serializer, the schema stays the model's own."""

    model_config = ConfigDict(defer_build=True)

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler):  # no return type: see above
        return {key: value for key, value in handler(self).items() if value is not None}


class Health(Answer):
    status: str = "ok"


class Ok(Answer):
    ok: bool = True


class Status(Ok):
    active: bool


class NewTenant(Ok):
    api_key: str | None = None  # only when the tenant is new


class NewApiKey(Ok):
    api_key: str


# -- tenants ------------------------------------------------------------------------------------


class ClientAuthView(Answer):
    method: str
    user: str | None = None


class LargeFileConfigView(Answer):
    enabled: bool
    max_size_mb: float
    storage_url: str | None = None
    action: str
    file_ttl_days: int


class TenantView(Answer):
    id: str
    name: str | None = None
    client_base_url: str | None = None
    client_sync_path: str
    client_attachment_path: str
    client_auth: ClientAuthView
    active: bool
    suspended_batches: list[str]
    large_file_config: LargeFileConfigView | None = None
    created_at: str | None = None
    updated_at: str | None = None


class Tenants(Ok):
    tenants: list[TenantView]


class TenantSyncView(Answer):
    id: str
    name: str | None = None
    active: bool
    client_base_url: str | None = None
    last_sync_ts: int | None = None
    next_sync_due: int
    in_dnd: bool


class SyncStatus(Ok):
    sync_interval_seconds: int
    tenants: list[TenantSyncView]


def sync_status(state: SyncState) -> SyncStatus:
    return SyncStatus(
        sync_interval_seconds=state.sync_interval_seconds,
        tenants=[TenantSyncView.model_validate(row, from_attributes=True) for row in state.tenants],
    )


def iso_utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def client_auth_view(auth: StoredClientAuth) -> ClientAuthView:
    # An empty user is no user: shown without one.
    return ClientAuthView(method=auth.method, user=auth.user or None)


def large_file_config_view(config: LargeFileConfig) -> LargeFileConfigView:
    return LargeFileConfigView.model_validate(config.model_dump())


def tenant_view(tenant: Tenant) -> TenantView:
    return TenantView(
        id=tenant.id,
        name=tenant.name,
        client_base_url=tenant.client_base_url,
        client_sync_path=tenant.client_sync_path,
        client_attachment_path=tenant.client_attachment_path,
        client_auth=client_auth_view(tenant.client_auth),
        active=tenant.active,
        suspended_batches=sorted(tenant.suspended_batches),
        large_file_config=(
            large_file_config_view(tenant.large_file_config) if tenant.large_file_config else None
        ),
        created_at=iso_utc(tenant.created_at),
        updated_at=iso_utc(tenant.updated_at),
    )


# -- accounts -----------------------------------------------------------------------------------


class AccountView(Answer):
    """An account as shown: every field of Account but the password, and when it was
    created and last changed. Its fields are Account's own (see account_view_model)."""


def _account_view_model() -> type[AccountView]:
    """AccountView with Account's fields (less the password) copied in, in Account's order:
    the two never disagree on a field."""
    import copy

    from pydantic import create_model

    fields: dict[str, Any] = {
        name: (info.annotation, copy.copy(info))
        for name, info in Account.model_fields.items()
        if name != "password"
    }
    fields["created_at"] = (str | None, None)
    fields["updated_at"] = (str | None, None)
    return create_model("AccountView", __base__=AccountView, **fields)


AccountViewModel = _account_view_model()


class Accounts(Ok):
    accounts: list[AccountViewModel]  # type: ignore[valid-type]


def account_view(stored: StoredAccount) -> AccountView:
    return AccountViewModel.model_validate(
        stored.account.model_dump(mode="json", exclude={"password"}, exclude_none=True)
        | {"created_at": iso_utc(stored.created_at), "updated_at": iso_utc(stored.updated_at)}
    )


# -- messages -----------------------------------------------------------------------------------


class EventView(Answer):
    event_id: str
    event_type: str
    event_ts: int
    description: str | None = None
    metadata: dict[str, Any] | None = None
    reported_ts: int | None = None


class MessageRecord(Answer):
    """SPEC.md's MessageRecord."""

    pk: str
    id: str
    tenant_id: str
    account_id: str | None = None
    priority: int
    batch_code: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    deferred_ts: int | None = None
    sent_ts: int | None = None
    error_ts: int | None = None
    error: str | None = None
    reported_ts: int | None = None
    message: dict[str, Any]
    status: str
    refused_recipients: dict[str, str] | None = None
    history: list[EventView] | None = None


class Messages(Ok):
    messages: list[MessageRecord]


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


def event_view(event: MessageEvent) -> EventView:
    return EventView(
        event_id=event.event_id,
        event_type=event.event_type.value,
        event_ts=int(event.event_ts),
        description=event.description,
        metadata=event.metadata or None,
        reported_ts=_int_or_none(event.reported_ts),
    )


def message_record(
    state: MessageState,
    payload: dict[str, Any] | None,
    history: list[MessageEvent] | None = None,
) -> MessageRecord:
    return MessageRecord(
        pk=state.pk,
        id=state.id,
        tenant_id=state.tenant_id,
        account_id=state.account_id,
        priority=int(state.priority),
        batch_code=state.batch_code,
        created_at=iso_utc(state.created_at),
        updated_at=iso_utc(state.updated_at),
        deferred_ts=_int_or_none(state.deferred_ts) if not state.status.is_final else None,
        sent_ts=_int_or_none(state.sent_ts),
        error_ts=_int_or_none(state.error_ts),
        error=state.error if state.status is MessageStatus.ERROR else None,
        reported_ts=_int_or_none(state.reported_ts),
        message=public_payload(payload) if payload is not None else {},
        status=state.status.value,
        refused_recipients=state.refused or None,
        history=[event_view(event) for event in history] if history is not None else None,
    )


def public_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A stored payload as GET /messages shows it: attachment contents and credentials left
    out (an inline attachment keeps only its "base64:" marker)."""
    attachments = payload.get("attachments")
    if not attachments:
        return payload
    shown = []
    for attachment in attachments:
        item = dict(attachment)
        path = str(item.get("storage_path", ""))
        if item.get("fetch_mode") == "base64" or path.startswith("base64:"):
            item["storage_path"] = "base64:"
        auth = item.get("auth")
        if isinstance(auth, dict):
            item["auth"] = {k: v for k, v in auth.items() if k in ("method", "user")}
        shown.append(item)
    return payload | {"attachments": shown}


class Queued(Ok):
    queued: int
    rejected: list[dict[str, str]]


class Deleted(Ok):
    removed: int
    not_found: list[str]
    unauthorized: list[str]


class CleanedUp(Ok):
    removed: int


class Suspension(Ok):
    tenant_id: str
    batch_code: str
    suspended_batches: list[str]
    pending_messages: int


class CommandLogEntry(Answer):
    id: int
    command_ts: int
    endpoint: str
    tenant_id: str | None = None
    payload: dict[str, Any]
    response_status: int | None = None


class CommandLog(Ok):
    commands: list[CommandLogEntry]
    total: int


class ReplayableCommand(BaseModel):
    """What a replay sends again, oldest first; tenant_id stays (null) when there is none."""

    model_config = ConfigDict(defer_build=True)

    endpoint: str
    tenant_id: str | None
    payload: dict[str, Any]
    command_ts: int


class CommandLogExport(Ok):
    commands: list[ReplayableCommand]


def command_log_entry(record: CommandRecord) -> CommandLogEntry:
    return CommandLogEntry(
        id=record.id,
        command_ts=record.command_ts,
        endpoint=record.endpoint,
        tenant_id=record.tenant_id,
        payload=record.payload,
        response_status=record.response_status,
    )


def replayable(record: CommandRecord) -> ReplayableCommand:
    return ReplayableCommand(
        endpoint=record.endpoint,
        tenant_id=record.tenant_id,
        payload=record.payload,
        command_ts=record.command_ts,
    )


class InstanceView(Answer):
    """GET /instance: the settings (never the IMAP password, nor any token); `id` is always 1,
    as the original proxy's single instance row is."""

    id: int = 1
    name: str | None = None
    bounce_enabled: bool
    bounce_imap_host: str | None = None
    bounce_imap_port: int
    bounce_imap_user: str | None = None
    bounce_imap_folder: str
    bounce_imap_ssl: bool
    bounce_poll_interval: int
    bounce_return_path: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
