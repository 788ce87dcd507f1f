"""The HTTP API of genro-mail-proxy 0.7 (`/{entity}/{method}`), beside the 0.6 routes of the
api handler: the same use cases, other shapes. Each route parses 0.7's arguments (a GET's query,
a POST's JSON body), calls one method of ApiUseCases and maps its result with responses_07.

Security is this proxy's, not 0.7's: each route has its 0.6 twin's scope in access.ROUTES,
and a tenant token sees only its tenant wherever a request names one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import ValidationError

from mailproxy import auth
from mailproxy.api import responses, responses_07
from mailproxy.api.requests import AccountChange, AddMessagesRequest, TenantIn
from mailproxy.api.requests_07 import (
    AccountRef,
    BounceConfigChange,
    DeleteBatch,
    DeleteByPk,
    InstanceUpdate,
    NewApiKeyRequest,
    RunNow,
    SuspensionChange,
    TenantRef,
    TenantUpdate07,
)
from mailproxy.domain.command_log import CommandQuery
from mailproxy.domain.errors import BadRequest, FieldProblem, InvalidRequest
from mailproxy.domain.instance import InstanceChange
from mailproxy.domain.message import Message
from mailproxy.domain.tenant import TENANT_ID_PATTERN, TenantUpdate

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

    from mailproxy.api.use_cases import ApiUseCases

TenantIdRequired = Annotated[str, Query(pattern=TENANT_ID_PATTERN)]
TenantIdQuery = Annotated[str | None, Query(pattern=TENANT_ID_PATTERN)]
KeyQuery = Annotated[str | None, Query(min_length=1, max_length=255)]

# 0.7's parts that this proxy does not have (its enterprise edition's): a 404 that says so.
ENTERPRISE_ONLY = (
    "/storages/",
    "/instance/upgrade_to_ee",
    "/accounts/add_pec",
    "/accounts/list_pec",
    "/accounts/get_pec_ids",
)
# 0.7 routes with no 0.6 twin that this proxy does not serve.
NOT_SERVED = (
    "/command_log/purge",
    "/messages/count_active",
    "/messages/count_pending_for_tenant",
)


def unavailable(path: str) -> str | None:
    """The 404 detail of a 0.7 route this proxy does not serve, None for any other path."""
    if path.startswith(ENTERPRISE_ONLY):
        return (
            "An enterprise feature of genro-mail-proxy 0.7 (storages, PEC, the edition "
            "upgrade): not available in this proxy"
        )
    if path.rstrip("/") in NOT_SERVED:
        return "A genro-mail-proxy 0.7 route not available in this proxy"
    return None


def _bounce_change(change: BounceConfigChange) -> Any:
    """The 0.7 bounce fields as PUT /instance's body (each with its bounce_ prefix), checked
    by InstanceChange's own rules; a field at fault is named as 0.7 names it."""
    given = {
        f"bounce_{name}": value for name, value in change.model_dump(exclude_none=True).items()
    }
    try:
        return InstanceChange.model_validate(given)
    except ValidationError as error:
        raise InvalidRequest(
            [
                FieldProblem(
                    ("body", *(str(part).removeprefix("bounce_") for part in problem["loc"])),
                    problem["msg"],
                    problem["type"],
                )
                for problem in error.errors()
            ]
        ) from None


def build_router(
    caller: Callable[[], auth.Principal],
    use_cases: Callable[[], ApiUseCases],
    documented: dict[int, OpenAPIResponse],
) -> Router:
    """The 0.7 routes, calling the handler's `caller` (authentication and the route's scope)
    and its `use_cases`."""
    router = Router()

    # -- instance ---------------------------------------------------------------------------

    @router.get(
        "/instance/status", summary="0.7: token check and service state", responses=documented
    )
    def instance_status() -> responses.Status:
        caller()
        return responses.Status(active=True)

    @router.post("/instance/run_now", summary="0.7: wake scheduling now", responses=documented)
    def instance_run_now(request: RunNow | None = None) -> responses.Ok:
        principal = caller()
        auth.scoped_tenant(principal, request.tenant_id if request else None)
        use_cases().run_now(principal)
        return responses.Ok()

    def change_suspension(action: str, request: SuspensionChange) -> responses.Suspension:
        result = use_cases().change_suspension(
            action, caller(), request.tenant_id, request.batch_code
        )
        return responses.Suspension.model_validate(result, from_attributes=True)

    @router.post("/instance/suspend", summary="0.7: hold a tenant's sending", responses=documented)
    def instance_suspend(request: SuspensionChange) -> responses.Suspension:
        return change_suspension("suspend", request)

    @router.post("/instance/activate", summary="0.7: release held sending", responses=documented)
    def instance_activate(request: SuspensionChange) -> responses.Suspension:
        return change_suspension("activate", request)

    @router.get(
        "/instance/get_sync_status", summary="0.7: report sync state (admin)", responses=documented
    )
    def instance_sync_status() -> responses.SyncStatus:
        caller()
        return responses.sync_status(use_cases().sync_status())

    @router.get("/instance/get", summary="0.7: instance settings (admin)", responses=documented)
    def instance_get() -> responses_07.InstanceRecord:
        caller()
        return responses_07.InstanceRecord.model_validate(use_cases().get_instance())

    @router.post("/instance/update", summary="0.7: the instance name (admin)", responses=documented)
    def instance_update(request: InstanceUpdate) -> responses.Ok:
        caller()
        refused = [
            FieldProblem(("body", name), f"{name} cannot be set in this proxy", "value_error")
            for name in ("api_token", "edition")
            if getattr(request, name) is not None
        ]
        if refused:
            raise InvalidRequest(refused)
        names = {"name": request.name} if request.name is not None else {}
        use_cases().update_instance(InstanceChange.model_validate(names))
        return responses.Ok()

    @router.get(
        "/instance/get_bounce_config", summary="0.7: bounce settings (admin)", responses=documented
    )
    def instance_get_bounce_config() -> responses_07.BounceConfig:
        caller()
        return responses_07.bounce_config(use_cases().get_instance())

    @router.post(
        "/instance/set_bounce_config",
        summary="0.7: change bounce settings (admin)",
        responses=documented,
    )
    def instance_set_bounce_config(request: BounceConfigChange) -> responses_07.BounceConfigSet:
        caller()
        use_cases().update_instance(_bounce_change(request))
        return responses_07.BounceConfigSet()

    @router.post(
        "/instance/reload_bounce",
        summary="0.7: run the bounce reader now (admin)",
        responses=documented,
    )
    def instance_reload_bounce() -> responses_07.BounceReloaded:
        caller()
        enabled = use_cases().reload_bounce_reporting_enabled()
        return responses_07.BounceReloaded(enabled=enabled)

    # -- tenants ----------------------------------------------------------------------------

    @router.post(
        "/tenants/add", summary="0.7: create or replace a tenant (admin)", responses=documented
    )
    def tenants_add(request: TenantIn) -> responses_07.TenantRecord:
        caller()
        tenant, api_key = use_cases().add_tenant(request)
        return responses_07.tenant_record(tenant, api_key)

    @router.get("/tenants/list", summary="0.7: list tenants (admin)", responses=documented)
    def tenants_list(
        active_only: Annotated[bool, Query()] = False,
    ) -> list[responses.TenantView]:
        caller()
        return [responses.tenant_view(tenant) for tenant in use_cases().list_tenants(active_only)]

    @router.get("/tenants/get", summary="0.7: read a tenant", responses=documented)
    def tenants_get(tenant_id: TenantIdRequired) -> responses.TenantView:
        return responses.tenant_view(use_cases().get_tenant(tenant_id, caller()))

    @router.get(
        "/tenants/get_suspended_batches",
        summary="0.7: a tenant's held batches",
        responses=documented,
    )
    def tenants_suspended(tenant_id: TenantIdRequired) -> responses_07.SuspendedBatches:
        tenant = use_cases().get_tenant(tenant_id, caller())
        return responses_07.SuspendedBatches(
            tenant_id=tenant.id, suspended_batches=sorted(tenant.suspended_batches)
        )

    @router.post(
        "/tenants/update", summary="0.7: change some fields of a tenant", responses=documented
    )
    def tenants_update(request: TenantUpdate07) -> responses.TenantView:
        # 0.7 skips the fields sent as null; only the others change.
        given = {
            name: getattr(request, name)
            for name in request.model_fields_set - {"tenant_id"}
            if getattr(request, name) is not None
        }
        update = TenantUpdate.model_construct(_fields_set=set(given), **given)
        tenant = use_cases().update_tenant_and_get(request.tenant_id, update, caller())
        return responses.tenant_view(tenant)

    @router.post(
        "/tenants/delete",
        summary="0.7: delete a tenant and all it owns (admin)",
        responses=documented,
    )
    def tenants_delete(request: TenantRef) -> bool:
        caller()
        use_cases().delete_tenant(request.tenant_id)
        return True

    @router.post(
        "/tenants/suspend_batch", summary="0.7: hold a tenant's sending", responses=documented
    )
    def tenants_suspend_batch(request: SuspensionChange) -> responses.Suspension:
        return change_suspension("suspend", request)

    @router.post(
        "/tenants/activate_batch", summary="0.7: release held sending", responses=documented
    )
    def tenants_activate_batch(request: SuspensionChange) -> responses.Suspension:
        return change_suspension("activate", request)

    @router.post(
        "/tenants/create_api_key", summary="0.7: issue a new API key (admin)", responses=documented
    )
    def tenants_create_api_key(request: NewApiKeyRequest) -> responses_07.NewApiKey07:
        caller()
        key = use_cases().rotate_api_key(request.tenant_id, request.expires_at)
        return responses_07.NewApiKey07(tenant_id=request.tenant_id, api_key=key)

    @router.post(
        "/tenants/revoke_api_key", summary="0.7: revoke the API key (admin)", responses=documented
    )
    def tenants_revoke_api_key(request: TenantRef) -> responses_07.Revoked:
        caller()
        use_cases().revoke_api_key(request.tenant_id)
        return responses_07.Revoked(tenant_id=request.tenant_id)

    # -- accounts ---------------------------------------------------------------------------

    @router.post(
        "/accounts/add", summary="0.7: create or change an SMTP account", responses=documented
    )
    def accounts_add(account: AccountChange) -> responses_07.AccountRecord:  # type: ignore[valid-type]
        return responses_07.account_record(use_cases().add_account(account, caller()))

    @router.get("/accounts/list", summary="0.7: list SMTP accounts", responses=documented)
    def accounts_list(tenant_id: TenantIdRequired) -> list[responses_07.AccountRecord]:
        listed = use_cases().list_accounts(caller(), tenant_id)
        return [responses_07.account_record(stored) for stored in listed]

    @router.get("/accounts/get", summary="0.7: read an SMTP account", responses=documented)
    def accounts_get(
        tenant_id: TenantIdRequired, account_id: Annotated[str, Query(min_length=1, max_length=255)]
    ) -> responses_07.AccountRecord:
        return responses_07.account_record(use_cases().get_account(caller(), tenant_id, account_id))

    @router.post("/accounts/delete", summary="0.7: delete an SMTP account", responses=documented)
    def accounts_delete(request: AccountRef) -> responses.Ok:
        use_cases().delete_account(request.account_id, caller(), request.tenant_id)
        return responses.Ok()

    # -- messages ---------------------------------------------------------------------------

    @router.post("/messages/add_batch", summary="0.7: queue messages", responses=documented)
    def messages_add_batch(request: AddMessagesRequest) -> responses.Queued:
        try:
            result = use_cases().add_messages(request, caller())
        except BadRequest as refused:
            # 0.7 answers 200 when nothing could be queued, the reasons in `rejected`.
            detail = refused.detail
            if isinstance(detail, dict) and isinstance(detail.get("rejected"), list):
                return responses.Queued(queued=0, rejected=detail["rejected"])
            raise
        return responses.Queued(queued=result.queued, rejected=result.rejected)

    @router.post("/messages/add", summary="0.7: queue one message", responses=documented)
    def messages_add(message: Message) -> responses_07.MessageRecord07:
        added = use_cases().add_message(message, caller())
        return responses_07.message_record(added.state, added.payload)

    @router.get("/messages/get", summary="0.7: read one message", responses=documented)
    def messages_get(
        tenant_id: TenantIdRequired, message_id: KeyQuery = None, id: KeyQuery = None
    ) -> responses_07.MessageRecord07:
        wanted = message_id or id
        if wanted is None:
            raise InvalidRequest(
                [FieldProblem(("query", "message_id"), "Field required", "missing")]
            )
        found = use_cases().get_message(caller(), tenant_id, wanted)
        return responses_07.message_record(found.state, found.payload)

    @router.get("/messages/list", summary="0.7: list messages, oldest first", responses=documented)
    def messages_list(
        tenant_id: TenantIdRequired,
        active_only: Annotated[bool, Query()] = False,
        include_history: Annotated[bool, Query()] = False,
    ) -> list[responses_07.MessageRecord07]:
        listed = use_cases().list_messages(
            caller(),
            tenant_id=tenant_id,
            active_only=active_only,
            include_history=include_history,
            limit=None,
        )
        return [responses_07.message_record(m.state, m.payload, m.history) for m in listed]

    @router.post(
        "/messages/delete_batch", summary="0.7: remove messages not yet sent", responses=documented
    )
    def messages_delete_batch(request: DeleteBatch) -> responses.Deleted:
        result = use_cases().delete_messages(request.ids, caller(), request.tenant_id)
        return responses.Deleted(
            removed=result.removed, not_found=result.not_found, unauthorized=result.unauthorized
        )

    @router.post(
        "/messages/delete", summary="0.7: remove one message by its pk", responses=documented
    )
    def messages_delete(request: DeleteByPk) -> bool:
        return use_cases().delete_message_by_pk(request.message_pk, caller())

    @router.get(
        "/messages/cleanup", summary="0.7: remove finished, reported messages", responses=documented
    )
    def messages_cleanup(
        tenant_id: TenantIdRequired,
        older_than_seconds: Annotated[int | None, Query(ge=0)] = None,
    ) -> responses.CleanedUp:
        return responses.CleanedUp(
            removed=use_cases().cleanup_messages(caller(), tenant_id, older_than_seconds)
        )

    # -- the command log --------------------------------------------------------------------

    @router.get(
        "/command_log/list", summary="0.7: state-changing calls (admin)", responses=documented
    )
    def command_log_list(
        tenant_id: TenantIdQuery = None,
        since_ts: Annotated[int | None, Query()] = None,
        until_ts: Annotated[int | None, Query()] = None,
        endpoint_filter: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    ) -> list[responses.CommandLogEntry]:
        caller()
        query = CommandQuery(tenant_id, since_ts, until_ts, endpoint_filter, limit + offset)
        found = use_cases().list_commands(query)[offset:]
        return [responses.command_log_entry(record) for record in found]

    @router.get("/command_log/get", summary="0.7: one logged call (admin)", responses=documented)
    def command_log_get(
        command_id: Annotated[int, Query(ge=0, le=2**63 - 1)],
    ) -> responses.CommandLogEntry:
        caller()
        return responses.command_log_entry(use_cases().get_command(command_id))

    @router.get(
        "/command_log/export", summary="0.7: the calls to replay (admin)", responses=documented
    )
    def command_log_export(
        tenant_id: TenantIdQuery = None,
        since_ts: Annotated[int | None, Query()] = None,
        until_ts: Annotated[int | None, Query()] = None,
    ) -> list[responses.ReplayableCommand]:
        caller()
        found = use_cases().export_commands(
            tenant_id=tenant_id, since_ts=since_ts, until_ts=until_ts
        )
        return [responses.replayable(record) for record in found]

    return router
