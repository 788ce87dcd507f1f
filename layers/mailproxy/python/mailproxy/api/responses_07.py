"""What the genro-mail-proxy 0.7 routes answer (mailproxy/api/routes_07.py), built from the
same typed results as the 0.6 answers of responses.py.

0.7 returns its rows as they are, every column present: a record here keeps its null fields
(a 0.7 client reads record["smtp_ts"]); an answer that wraps a 0.6 view keeps that view's
rules. Lists are bare JSON arrays, as 0.7 answers them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from mailproxy.api import responses
from mailproxy.domain.account import StoredAccount
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.tenant import Tenant


class Plain(BaseModel):
    """An answer shown with every field, null ones too."""

    model_config = ConfigDict(defer_build=True)


class MessageRecord07(Plain):
    """A message as 0.7 lists it: `payload` where 0.6 says `message`, `smtp_ts` where 0.6
    says `sent_ts`."""

    pk: str
    id: str
    tenant_id: str
    account_id: str | None
    priority: int
    batch_code: str | None
    payload: dict[str, Any]
    status: str
    created_at: str | None
    updated_at: str | None
    deferred_ts: int | None
    smtp_ts: int | None
    error_ts: int | None
    error: str | None
    reported_ts: int | None
    refused_recipients: dict[str, str] | None = None
    history: list[responses.EventView] | None = None


def message_record(
    state: MessageState,
    payload: dict[str, Any] | None,
    history: list[MessageEvent] | None = None,
) -> MessageRecord07:
    shown = responses.message_record(state, payload, history)
    fields = {name: getattr(shown, name) for name in type(shown).model_fields}
    fields["payload"] = fields.pop("message")
    fields["smtp_ts"] = fields.pop("sent_ts")
    return MessageRecord07.model_validate(fields)


class AccountRecord(responses.AccountViewModel):  # type: ignore[misc, valid-type]
    """An account as 0.6 shows it, with the pk 0.7 gives it: tenant_id/id."""

    pk: str


def account_record(stored: StoredAccount) -> AccountRecord:
    shown = responses.account_view(stored).model_dump()
    pk = f"{stored.account.tenant_id}/{stored.account.id}"
    return AccountRecord.model_validate(shown | {"pk": pk})


class TenantRecord(responses.TenantView):
    """A tenant as 0.6 shows it; its key only once, from the tenants/add that created it."""

    api_key: str | None = None


def tenant_record(tenant: Tenant, api_key: str | None = None) -> TenantRecord:
    shown = responses.tenant_view(tenant)
    return TenantRecord.model_validate(
        {name: getattr(shown, name) for name in type(shown).model_fields} | {"api_key": api_key}
    )


class NewApiKey07(responses.Ok):
    tenant_id: str
    api_key: str
    message: str = "Save this API key - it will not be shown again."


class Revoked(responses.Ok):
    tenant_id: str
    message: str = "API key revoked"


class SuspendedBatches(responses.Ok):
    tenant_id: str
    suspended_batches: list[str]


class InstanceRecord(responses.InstanceView):
    ok: bool = True


class BounceConfig(Plain):
    ok: bool = True
    enabled: bool
    imap_host: str | None
    imap_port: int
    imap_user: str | None
    imap_folder: str
    imap_ssl: bool
    poll_interval: int
    return_path: str | None


def bounce_config(instance: dict[str, Any]) -> BounceConfig:
    prefix = "bounce_"
    return BounceConfig.model_validate(
        {
            key.removeprefix(prefix): value
            for key, value in instance.items()
            if key.startswith(prefix)
        }
    )


class BounceConfigSet(responses.Ok):
    message: str = "Bounce config updated. Use reload_bounce() to apply."


class BounceReloaded(responses.Ok):
    enabled: bool
    message: str = "Config reloaded"
