"""Tenants from a test's point of view: create one through the API, snapshot what it owns,
and look at (or nudge) the stored items where no API does so yet."""

from __future__ import annotations

import time
from typing import Any

import boto3

ADMIN_ONLY = {"detail": "Admin token required"}
INVALID_TOKEN = {"detail": "Invalid or missing API token"}
WRONG_TENANT = {"detail": "Token not authorized for this tenant"}


def tenant_not_found(tenant_id: str) -> dict[str, str]:
    return {"detail": f"Tenant '{tenant_id}' not found"}


def create_tenant(api: Any, tenant_id: str, **fields: Any) -> str:
    """POST /tenant as the admin; the API key of the new tenant."""
    status, body = api.call("POST", "/tenant", {"id": tenant_id} | fields)
    assert status == 200, body
    assert body["ok"] is True
    key = body["api_key"]
    assert isinstance(key, str)
    assert key
    return key


def ok_json(api: Any, method: str, path: str, *, query: str = "", token: Any = ...) -> Any:
    status, body = api.call(method, path, query=query, token=token)
    assert status == 200, (method, path, query, status, body)
    return body


def snapshot(api: Any, tenant_id: str) -> dict[str, Any]:
    """Everything a tenant owns as the admin sees it: the tenant, its accounts, its messages
    with their history."""
    return {
        "tenant": api.call("GET", f"/tenant/{tenant_id}"),
        "accounts": api.call("GET", "/accounts", query=f"tenant_id={tenant_id}"),
        "messages": api.call(
            "GET", "/messages", query=f"tenant_id={tenant_id}&include_history=true"
        ),
    }


def message_ids(api: Any, tenant_id: str, token: Any = ...) -> list[str]:
    body = ok_json(api, "GET", "/messages", query=f"tenant_id={tenant_id}", token=token)
    return [record["id"] for record in body["messages"]]


def records_by_id(api: Any, tenant_id: str) -> dict[str, dict[str, Any]]:
    body = ok_json(api, "GET", "/messages", query=f"tenant_id={tenant_id}&include_history=true")
    return {record["id"]: record for record in body["messages"]}


# -- the stored items ---------------------------------------------------------------------------


def raw_items(table_name: str) -> list[dict[str, Any]]:
    """Every item of a DynamoDB table, as the low-level client returns it."""
    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table_name}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def raw_item(table_name: str, key: dict[str, str]) -> dict[str, Any]:
    response = boto3.client("dynamodb").get_item(
        TableName=table_name,
        Key={name: {"S": value} for name, value in key.items()},
        ConsistentRead=True,
    )
    item = response.get("Item")
    assert item is not None, f"no item {key} in {table_name}"
    return dict(item)


def stored_events(tenant_id: str, message_id: str | None = None) -> list[Any]:
    """The event items of a tenant (of one message, when given)."""
    from mailproxy import runtime

    events = runtime.store()._m.event
    return [
        item
        for item in events.query(tenant_id)
        if message_id is None or item.message_id == message_id
    ]


def mark_events_reported(tenant_id: str, message_id: str) -> int:
    """What a delivery report the client acknowledged will do: stamp the message's events
    reported. No code path does it yet, so the test writes it; how many were stamped."""
    from mailproxy import runtime

    event_model = runtime.store()._m.event
    items = stored_events(tenant_id, message_id)
    for item in items:
        item.update(actions=[event_model.reported_ts.set(time.time())])
    return len(items)


def add_unreported_event(tenant_id: str, message_id: str) -> None:
    """A further event of a message, not yet reported (as a later retry would leave)."""
    from mailproxy import runtime

    event_model = runtime.store()._m.event
    event_model(
        tenant_id,
        f"{int(time.time() * 1000) + 1:013d}#{message_id}#9#deferred",
        message_id=message_id,
        event_type="deferred",
        event_ts=time.time(),
        description="a later attempt",
    ).save()


def claim_for_sending(tenant_id: str, message_id: str, lease_seconds: int = 360) -> None:
    """Do what a sender does when it takes a message: claim it under a live lease."""
    from mailproxy import runtime

    store = runtime.store()
    state = store.get_state(tenant_id, message_id)
    assert state is not None
    from mailproxy.domain.ports import Claimed

    claimed = store.claim(
        tenant_id,
        message_id,
        state.ticket,
        state.body_version,
        now=time.time(),
        lease_seconds=lease_seconds,
        claim_token="test-claim",
        charges=[],
    )
    assert isinstance(claimed, Claimed), f"{tenant_id}/{message_id} could not be claimed"
