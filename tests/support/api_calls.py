"""The API calls many integration tests make the same way, each asserting that it worked."""

from __future__ import annotations

from typing import Any, Protocol


class CallsTheApi(Protocol):
    def call(self, method: str, path: str, body: Any = None, **options: Any) -> tuple[int, Any]: ...


def add_all(api: CallsTheApi, *messages: dict[str, Any]) -> None:
    """Submit these messages, every one of which must be queued."""
    status, body = api.call("POST", "/commands/add-messages", {"messages": list(messages)})
    assert (status, body["queued"]) == (200, len(messages)), body


def statuses(api: CallsTheApi) -> dict[str, str]:
    """Every message's status, by id."""
    status, body = api.call("GET", "/messages")
    assert status == 200, body
    return {record["id"]: record["status"] for record in body["messages"]}
