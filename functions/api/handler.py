"""The api Lambda: HTTP API events in, the contract of SPEC.md out.

Each route parses its input (Powertools validates bodies and queries with the models of
mailproxy/api/requests.py), calls one use case (mailproxy/api/use_cases.py) and maps the result
to its answer (mailproxy/api/responses.py). Who may call what is mailproxy/api/access.py.
genro-mail-proxy 0.7's routes (mailproxy/api/routes_07.py) are included on the same app, over
the same use cases.
"""

from __future__ import annotations

import base64
import json
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailproxy import auth
from mailproxy.api import access, responses, routes_07
from mailproxy.api.requests import (
    AccountChange,
    AddMessagesRequest,
    CleanupRequest,
    DeleteMessagesRequest,
    TenantIn,
    TenantUpdate,
)
from mailproxy.api.responses import ErrorBody
from mailproxy.api.use_cases import ApiUseCases
from mailproxy.api.use_cases import build as build_use_cases
from mailproxy.domain.command_log import (
    DEFAULT_LIMIT,
    MASK,
    CommandQuery,
    endpoint_of,
    is_logged,
    masked,
)
from mailproxy.domain.errors import (
    BadRequest,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    StorageFailure,
)
from mailproxy.domain.instance import InstanceChange
from mailproxy.domain.tenant import TENANT_ID_PATTERN

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

logger = Logger(service="mailproxy-api")
app = APIGatewayHttpResolver(enable_validation=True)
API_TITLE = "mailproxy"
API_DESCRIPTION = (
    "A serverless email proxy speaking the HTTP API of genro-mail-proxy 0.6, and beside it"
    " that of 0.7 (/{entity}/{method})."
)

# A command whose log write failed goes to the function's log instead, whole up to this size.
FAILED_COMMAND_LOGGED_BYTES = 64 * 1024

TenantIdQuery = Annotated[str | None, Query(pattern=TENANT_ID_PATTERN)]
TenantIdPath = Annotated[str, Path(pattern=TENANT_ID_PATTERN)]


def _error(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


ERRORS: dict[int, OpenAPIResponse] = {
    400: _error("The request cannot be carried out"),
    401: _error("Invalid or missing API token, or a token of another tenant"),
    403: _error("Admin token required"),
    404: _error("Not found"),
    413: _error("Over a size limit"),
}
# Given without content, the 200 is documented with the route's return type.
RESPONSES: dict[int, OpenAPIResponse] = {200: {"description": "Successful Response"}, **ERRORS}


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@lru_cache(maxsize=1)
def use_cases() -> ApiUseCases:
    """This execution environment's use cases, built on the first request that needs them."""
    return build_use_cases()


def _authenticated() -> auth.Principal:
    return use_cases().authenticate(app.current_event.headers.get(auth.TOKEN_HEADER))


# The request's caller, once authenticated: whom the command log names as the call's tenant.
_principal: ContextVar[auth.Principal | None] = ContextVar("principal", default=None)


def caller() -> auth.Principal:
    """The caller, once it has the scope the route table gives this route."""
    principal = _authenticated()
    _principal.set(principal)
    event = app.current_event
    access.require_scope(principal, access.scope_of(event.http_method, event.path))
    return principal


@app.exception_handler(auth.Unauthorized)
def _unauthorized(error: auth.Unauthorized) -> Response:
    return _json(401, {"detail": error.detail})


@app.exception_handler(auth.Forbidden)
def _forbidden(error: auth.Forbidden) -> Response:
    return _json(403, {"detail": error.detail})


def _refusal_before_validation() -> Response | None:
    """The 401 or 403 a request would get once valid: a caller without the right to make it
    learns nothing about the shape of a valid request."""
    event = app.current_event
    route = access.route_access(event.http_method, event.path)
    try:
        principal = _authenticated()
        if principal.is_admin:
            return None
        # The tenant in the path first: another tenant's id is a 401 even where the route is
        # the admin's (as it always was; SPEC.md would say 403).
        path_tenant = route.parameters(event.path).get("tenant_id") if route else None
        if path_tenant is not None:
            auth.scoped_tenant(principal, path_tenant)
        access.require_scope(principal, route.scope if route else access.Scope.TENANT)
        for named in [(event.query_string_parameters or {}).get("tenant_id"), *_body_tenants()]:
            if named:
                auth.scoped_tenant(principal, str(named))
    except auth.Unauthorized as denied:
        return _unauthorized(denied)
    except auth.Forbidden as forbidden:
        return _forbidden(forbidden)
    return None


def _body_tenants() -> list[object]:
    """tenant_id values a JSON body names (of itself, or of its messages), if it parses."""
    try:
        body = json.loads(app.current_event.decoded_body or "null")
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    named = [body.get("tenant_id")]
    messages = body.get("messages")
    if isinstance(messages, list):
        named += [item.get("tenant_id") for item in messages if isinstance(item, dict)]
    return named


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    refusal = _refusal_before_validation()
    if refusal is not None:
        return refusal
    # Only where and what: `input` could echo a secret (an SMTP password) back.
    detail = [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
        for item in error.errors()
    ]
    return _json(422, {"detail": detail})


@app.exception_handler(UnicodeDecodeError)
def _undecodable_body(error: UnicodeDecodeError) -> Response:
    refusal = _refusal_before_validation()
    if refusal is not None:
        return refusal
    problem = {"loc": ["body"], "msg": "The body is not UTF-8 JSON", "type": "json_invalid"}
    return _json(422, {"detail": [problem]})


@app.exception_handler(InvalidRequest)
def _invalid_fields(error: InvalidRequest) -> Response:
    return _json(
        422,
        {"detail": [{"loc": list(p.loc), "msg": p.msg, "type": p.type} for p in error.problems]},
    )


@app.exception_handler(BadRequest)
def _bad_request(error: BadRequest) -> Response:
    return _json(400, {"detail": error.detail})


@app.exception_handler(NotFound)
def _missing(error: NotFound) -> Response:
    return _json(404, {"detail": error.detail})


@app.exception_handler(PayloadTooLarge)
def _too_large(error: PayloadTooLarge) -> Response:
    return _json(413, {"detail": error.detail})


@app.exception_handler(StorageFailure)
def _storage_failure(error: StorageFailure) -> Response:
    logger.warning("storage request failed", extra={"detail": error.detail})
    return _json(503, {"detail": "Storage is unavailable, try again shortly"})


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    # Logged with its trace for the operator; the client learns nothing of the internals.
    logger.exception("unhandled error")
    return _json(500, {"detail": "Internal server error"})


@app.not_found
def _not_found(_: Exception) -> Response:
    return _json(404, {"detail": routes_07.unavailable(app.current_event.path) or "Not Found"})


# -- service ----------------------------------------------------------------------------------


@app.get("/health", summary="Liveness, no token needed")
def health() -> responses.Health:
    return responses.Health()


# No return annotation: Powertools would try to build a schema for `Response` itself.
@app.get("/openapi.json", include_in_schema=False)
def openapi():
    body = app.get_openapi_json_schema(title=API_TITLE, description=API_DESCRIPTION)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


# Powertools' own Swagger page (its generator and the UI files it ships), served by a route of
# ours: enable_swagger imports the OpenAPI models when called, about 50 ms that every cold start
# would pay; here only a /docs request does.
@app.get("/docs", include_in_schema=False)
def docs():
    from pathlib import Path

    from aws_lambda_powertools.event_handler import api_gateway
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import (
        generate_oauth2_redirect_html,
        generate_swagger_html,
    )

    query = app.current_event.query_string_parameters or {}
    if query.get("format") == "oauth2-redirect":
        return Response(200, content_types.TEXT_HTML, generate_oauth2_redirect_html())
    spec = app.get_openapi_json_schema(title=API_TITLE, description=API_DESCRIPTION)
    # A "</script>" inside the spec must not end the page's script.
    escaped = spec.replace("</", "<\\/")
    if query.get("format") == "json":
        return Response(200, content_types.APPLICATION_JSON, escaped)
    ui = Path(api_gateway.__file__).parent / "openapi" / "swagger_ui"
    page = generate_swagger_html(
        escaped,
        (ui / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (ui / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
    return Response(200, content_types.TEXT_HTML, page)


# No return annotation: Powertools would try to build a schema for `Response` itself.
@app.get("/metrics", summary="Prometheus text format 0.0.4, no token needed")
def metrics():
    # Imported here, not at module level: only this route needs prometheus_client, which is
    # a tenth of the cold start.
    from mailproxy import prometheus

    return Response(
        status_code=200, content_type=prometheus.CONTENT_TYPE, body=use_cases().metrics_text()
    )


# No return annotation: Powertools would try to build a schema for `Response` itself.
@app.get(
    "/files/<token>",
    summary="Download a large attachment by its link (no token: the link is the credential)",
    responses={302: {"description": "To the file, for a few minutes"}, 404: ERRORS[404]},
)
def download_file(token: str):
    # Any path segment is accepted here and judged by the service: a validation error would
    # answer 401 (no API token), and an unknown link must look like an expired one (404).
    location = use_cases().download_location(token)
    return Response(
        status_code=302,
        content_type=content_types.TEXT_PLAIN,
        body="",
        # The link is a bearer credential: not to be cached, nor sent on as a Referer.
        headers={
            "Location": location,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


@app.get("/status", summary="Token check and service state", responses=RESPONSES)
def status() -> responses.Status:
    caller()
    return responses.Status(active=True)


@app.post(
    "/commands/run-now", summary="Wake scheduling and delivery reports now", responses=RESPONSES
)
def run_now() -> responses.Ok:
    use_cases().run_now(caller())
    return responses.Ok()


# -- tenants ----------------------------------------------------------------------------------


@app.post("/tenant", summary="Create or replace a tenant (admin)", responses=RESPONSES)
def post_tenant(tenant: TenantIn) -> responses.NewTenant:
    caller()
    return responses.NewTenant(api_key=use_cases().put_tenant(tenant) or None)


@app.get("/tenants", summary="List tenants (admin)", responses=RESPONSES)
def get_tenants(active_only: Annotated[bool, Query()] = False) -> responses.Tenants:
    caller()
    listed = use_cases().list_tenants(active_only)
    return responses.Tenants(tenants=[responses.tenant_view(tenant) for tenant in listed])


@app.get("/tenants/sync-status", summary="Delivery report sync state (admin)", responses=RESPONSES)
def get_sync_status() -> responses.SyncStatus:
    caller()
    return responses.sync_status(use_cases().sync_status())


@app.get("/instance", summary="The instance settings (admin)", responses=RESPONSES)
def get_instance() -> responses.InstanceView:
    caller()
    return responses.InstanceView.model_validate(use_cases().get_instance())


@app.put("/instance", summary="Change some instance settings (admin)", responses=RESPONSES)
def put_instance(change: InstanceChange) -> responses.Ok:  # type: ignore[valid-type]
    caller()
    use_cases().update_instance(change)
    return responses.Ok()


@app.post(
    "/instance/reload-bounce",
    summary="The bounce reader runs now, with the settings stored (admin)",
    responses=RESPONSES,
)
def reload_bounce() -> responses.Ok:
    caller()
    use_cases().reload_bounce()
    return responses.Ok()


@app.get("/command-log", summary="State-changing calls, newest first (admin)", responses=RESPONSES)
def get_command_log(
    tenant_id: TenantIdQuery = None,
    since_ts: Annotated[int | None, Query()] = None,
    until_ts: Annotated[int | None, Query()] = None,
    endpoint_filter: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = DEFAULT_LIMIT,
) -> responses.CommandLog:
    caller()
    query = CommandQuery(tenant_id, since_ts, until_ts, endpoint_filter, limit)
    found = use_cases().list_commands(query)
    return responses.CommandLog(
        commands=[responses.command_log_entry(record) for record in found], total=len(found)
    )


@app.get(
    "/command-log/export", summary="The calls to replay, oldest first (admin)", responses=RESPONSES
)
def export_command_log(
    tenant_id: TenantIdQuery = None,
    since_ts: Annotated[int | None, Query()] = None,
    until_ts: Annotated[int | None, Query()] = None,
) -> responses.CommandLogExport:
    caller()
    found = use_cases().export_commands(tenant_id=tenant_id, since_ts=since_ts, until_ts=until_ts)
    return responses.CommandLogExport(commands=[responses.replayable(record) for record in found])


@app.get("/tenant/<tenant_id>", summary="Read a tenant", responses=RESPONSES)
def get_tenant(tenant_id: TenantIdPath) -> responses.TenantView:
    return responses.tenant_view(use_cases().get_tenant(tenant_id, caller()))


@app.put("/tenant/<tenant_id>", summary="Change some fields of a tenant", responses=RESPONSES)
def put_tenant(tenant_id: TenantIdPath, update: TenantUpdate) -> responses.Ok:
    use_cases().update_tenant(tenant_id, update, caller())
    return responses.Ok()


@app.delete(
    "/tenant/<tenant_id>", summary="Delete a tenant and all it owns (admin)", responses=RESPONSES
)
def delete_tenant(tenant_id: TenantIdPath) -> responses.Ok:
    caller()
    use_cases().delete_tenant(tenant_id)
    return responses.Ok()


@app.post("/tenant/<tenant_id>/api-key", summary="Issue a new API key (admin)", responses=RESPONSES)
def rotate_key(tenant_id: TenantIdPath) -> responses.NewApiKey:
    caller()
    return responses.NewApiKey(api_key=use_cases().rotate_api_key(tenant_id))


@app.delete(
    "/tenant/<tenant_id>/api-key", summary="Revoke the API key (admin)", responses=RESPONSES
)
def revoke_key(tenant_id: TenantIdPath) -> responses.Ok:
    caller()
    use_cases().revoke_api_key(tenant_id)
    return responses.Ok()


# -- accounts ---------------------------------------------------------------------------------


@app.post(
    "/account", summary="Create an SMTP account, or change the fields given", responses=RESPONSES
)
def post_account(account: AccountChange) -> responses.Ok:  # type: ignore[valid-type]
    use_cases().save_account(account, caller())
    return responses.Ok()


@app.get("/accounts", summary="List SMTP accounts (never a password)", responses=RESPONSES)
def get_accounts(tenant_id: TenantIdQuery = None) -> responses.Accounts:
    listed = use_cases().list_accounts(caller(), tenant_id)
    return responses.Accounts(accounts=[responses.account_view(stored) for stored in listed])


@app.delete("/account/<account_id>", summary="Delete an SMTP account", responses=RESPONSES)
def delete_account(
    account_id: Annotated[str, Path(min_length=1, max_length=255)],
    tenant_id: TenantIdQuery = None,
) -> responses.Ok:
    use_cases().delete_account(account_id, caller(), tenant_id)
    return responses.Ok()


# -- messages ---------------------------------------------------------------------------------


@app.post("/commands/add-messages", summary="Queue messages for delivery", responses=RESPONSES)
def add_messages(request: AddMessagesRequest) -> responses.Queued:
    result = use_cases().add_messages(request, caller())
    return responses.Queued(queued=result.queued, rejected=result.rejected)


@app.get("/messages", summary="List messages, oldest first", responses=RESPONSES)
def get_messages(
    tenant_id: TenantIdQuery = None,
    active_only: Annotated[bool, Query()] = False,
    include_history: Annotated[bool, Query()] = False,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> responses.Messages:
    listed = use_cases().list_messages(
        caller(),
        tenant_id=tenant_id,
        active_only=active_only,
        include_history=include_history,
        limit=limit,
    )
    return responses.Messages(
        messages=[
            responses.message_record(item.state, item.payload, item.history) for item in listed
        ]
    )


@app.post("/commands/delete-messages", summary="Remove messages not yet sent", responses=RESPONSES)
def delete_messages(
    request: DeleteMessagesRequest, tenant_id: TenantIdQuery = None
) -> responses.Deleted:
    result = use_cases().delete_messages(request.ids, caller(), tenant_id)
    return responses.Deleted(
        removed=result.removed, not_found=result.not_found, unauthorized=result.unauthorized
    )


@app.post(
    "/commands/cleanup-messages",
    summary="Remove finished, fully reported messages",
    responses=RESPONSES,
)
def cleanup_messages(
    request: CleanupRequest | None = None, tenant_id: TenantIdQuery = None
) -> responses.CleanedUp:
    older_than = request.older_than_seconds if request else None
    return responses.CleanedUp(
        removed=use_cases().cleanup_messages(caller(), tenant_id, older_than)
    )


BatchCodeQuery = Annotated[str | None, Query(max_length=64)]


def _change_suspension(
    action: str, tenant_id: str | None, batch_code: str | None
) -> responses.Suspension:
    result = use_cases().change_suspension(action, caller(), tenant_id, batch_code)
    return responses.Suspension.model_validate(result, from_attributes=True)


@app.post(
    "/commands/suspend", summary="Hold a tenant's sending (or one batch)", responses=RESPONSES
)
def suspend(
    tenant_id: TenantIdQuery = None, batch_code: BatchCodeQuery = None
) -> responses.Suspension:
    return _change_suspension("suspend", tenant_id, batch_code)


@app.post("/commands/activate", summary="Release held sending", responses=RESPONSES)
def activate(
    tenant_id: TenantIdQuery = None, batch_code: BatchCodeQuery = None
) -> responses.Suspension:
    return _change_suspension("activate", tenant_id, batch_code)


# genro-mail-proxy 0.7's routes: the same use cases, 0.7's shapes.
app.include_router(routes_07.build_router(caller, use_cases, RESPONSES))


def _body_read_as_json(event: dict[str, Any]) -> dict[str, Any]:
    """Every body is read as JSON, whatever its Content-Type says: the original proxy's own
    documentation posts with `curl -d`, which sends form-urlencoded. A body that is not JSON
    then gets the JSON parser's 422, never a form or content-type error."""
    headers = event.get("headers") or {}
    if not event.get("body") or headers.get("content-type", "").startswith("application/json"):
        return event
    return {**event, "headers": {**headers, "content-type": "application/json"}}


def _record_command(event: dict[str, Any], response: dict[str, Any]) -> None:
    """A state-changing call its caller had the right to make goes into the command log,
    whatever its answer. Recording never fails the call: a write that fails is logged with
    the masked record instead, so the operator still has it."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method, path = str(http.get("method", "")), str(event.get("rawPath", ""))
    status = int(response.get("statusCode", 500))
    route = access.route_access(method, path)
    if route is None or not (is_logged(method) or route.changes_state) or status in (401, 403):
        return
    payload = _json_body(event)
    query = event.get("queryStringParameters") or {}
    principal = _principal.get()
    tenant_id = (
        principal.tenant_id
        if principal is not None and not principal.is_admin
        else route.parameters(path).get("tenant_id")
        or query.get("tenant_id")
        or _tenant_of_body(route, payload)
    )
    command = {
        "endpoint": endpoint_of(method, path, query),
        "tenant_id": tenant_id if isinstance(tenant_id, str) else None,
        "payload": payload if payload is not None else {},
        "response_status": status,
    }
    try:
        use_cases().record_command(**command)
    except Exception:
        kept = masked(command)
        if len(json.dumps(kept, default=str)) > FAILED_COMMAND_LOGGED_BYTES:
            kept["payload"] = {"truncated": True}
        logger.exception("command log write failed", extra={"command": kept})


def _tenant_of_body(route: access.RouteAccess, payload: Any) -> object:
    if not isinstance(payload, dict):
        return None
    # POST /tenant (0.7: POST /tenants/add) names its tenant as the body's id.
    names_by_id = route.path in ("/tenant", "/tenants/add")
    named = payload.get("tenant_id") or (payload.get("id") if names_by_id else None)
    messages = payload.get("messages")
    if named is None and isinstance(messages, list):
        # An admin's add-messages names the tenant in each message: the one, if it is one.
        tenants = {item.get("tenant_id") for item in messages if isinstance(item, dict)}
        named = tenants.pop() if len(tenants) == 1 else None
    return named


def _json_body(event: dict[str, Any]) -> Any:
    body = event.get("body")
    if not body:
        return None
    try:
        text = base64.b64decode(body) if event.get("isBase64Encoded") else body
        return json.loads(text)
    except ValueError:
        return {"unparsed_body": MASK}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _principal.set(None)
    event = _body_read_as_json(event)
    response = app.resolve(event, context)
    _record_command(event, response)
    return response
