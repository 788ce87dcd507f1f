"""The api Lambda: HTTP API events in, the contract of SPEC.md out.

Each route parses its input (Powertools validates bodies and queries with the domain's
pydantic models), calls one function of the core, and maps the result to a response.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailproxy import auth, runtime
from mailproxy.domain.account import Account
from mailproxy.domain.errors import BadRequest, InvalidRequest
from mailproxy.domain.message import AddMessagesRequest
from mailproxy.queueing import new_ticket
from mailproxy.service import accounts, listing, submission

logger = Logger(service="mailproxy-api")
app = APIGatewayHttpResolver(enable_validation=True)


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def caller() -> auth.Principal:
    return auth.authenticate(
        app.current_event.headers.get(auth.TOKEN_HEADER), runtime.admin_token()
    )


@app.exception_handler(auth.Unauthorized)
def _unauthorized(error: auth.Unauthorized) -> Response:
    return _json(401, {"detail": error.detail})


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    # A caller without a valid token learns nothing about the shape of a valid request.
    try:
        caller()
    except auth.Unauthorized as denied:
        return _unauthorized(denied)
    # Only where and what: `input` could echo a secret (an SMTP password) back.
    detail = [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
        for item in error.errors()
    ]
    return _json(422, {"detail": detail})


@app.exception_handler(InvalidRequest)
def _invalid_fields(error: InvalidRequest) -> Response:
    return _json(
        422,
        {"detail": [{"loc": list(p.loc), "msg": p.msg, "type": p.type} for p in error.problems]},
    )


@app.exception_handler(BadRequest)
def _bad_request(error: BadRequest) -> Response:
    return _json(400, {"detail": error.detail})


@app.not_found
def _not_found(_: Exception) -> Response:
    return _json(404, {"detail": "Not Found"})


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/status")
def status() -> dict[str, Any]:
    caller()
    return {"ok": True, "active": True}


@app.post("/commands/run-now")
def run_now() -> dict[str, Any]:
    caller()
    return {"ok": True}


@app.post("/account")
def post_account(account: Account) -> dict[str, Any]:
    accounts.save_account(account, caller(), runtime.store(), time.time)
    return {"ok": True}


@app.get("/accounts")
def get_accounts(tenant_id: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    return {"ok": True, "accounts": accounts.list_accounts(caller(), tenant_id, runtime.store())}


@app.post("/commands/add-messages")
def add_messages(request: AddMessagesRequest) -> dict[str, Any]:
    result = submission.add_messages(
        request, caller(), runtime.store(), runtime.queues(), time.time, new_ticket
    )
    return {"ok": True, "queued": result.queued, "rejected": result.rejected}


@app.get("/messages")
def get_messages(
    tenant_id: Annotated[str | None, Query()] = None,
    active_only: Annotated[bool, Query()] = False,
    include_history: Annotated[bool, Query()] = False,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    messages = listing.list_messages(
        caller(),
        runtime.store(),
        tenant_id=tenant_id,
        active_only=active_only,
        include_history=include_history,
        limit=limit,
    )
    return {"ok": True, "messages": messages}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
