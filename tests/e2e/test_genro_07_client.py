"""An application written for genro-mail-proxy 0.7 moves to this proxy by changing its URL:
its calls, as 0.7's routes take them (`/{entity}/{method}`, a GET's query, a POST's JSON
body), over HTTP to local mode, with a real SMTP server behind.

The 0.7 wheel bundles no HTTP client (tools.http_client is not in it), so the requests are
written here as 0.7's routes take them.
"""

from __future__ import annotations

from typing import Any

from tests.support.local_mode import LocalMode
from tests.support.smtp_servers import SmtpServer

TENANT = "shop07"


def ok(local: LocalMode, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    status, answer = local.call(method, path, body, token=token)
    assert status == 200, (method, path, status, answer)
    return answer


def mail(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"order-{n}",
        "tenant_id": TENANT,
        "account_id": "smtp",
        "from": "Shop <noreply@shop.test>",
        "to": [f"customer{n}@example.test"],
        "subject": f"Order {n}",
        "body": f"Thanks for order {n}",
    } | fields


def statuses(local: LocalMode, key: str) -> dict[str, str]:
    listed = ok(local, "GET", f"/messages/list?tenant_id={TENANT}", token=key)
    assert isinstance(listed, list)
    return {record["id"]: record["status"] for record in listed}


def test_a_0_7_client_flow_from_tenant_to_cleanup(local_mode: LocalMode) -> None:
    with SmtpServer() as server:
        # Given a tenant added by the admin, with the key 0.7 shows once
        tenant = ok(local_mode, "POST", "/tenants/add", {"id": TENANT, "name": "Shop"})
        key = tenant["api_key"]
        assert tenant["id"] == TENANT
        # And its account, added with the tenant's own key
        account = ok(
            local_mode,
            "POST",
            "/accounts/add",
            {
                "id": "smtp",
                "tenant_id": TENANT,
                "host": "127.0.0.1",
                "port": server.port,
                "use_tls": False,
            },
            token=key,
        )
        assert account["pk"] == f"{TENANT}/smtp"
        listed = ok(local_mode, "GET", f"/accounts/list?tenant_id={TENANT}", token=key)
        assert [item["id"] for item in listed] == ["smtp"]

        # When a batch of three messages is added
        queued = ok(
            local_mode,
            "POST",
            "/messages/add_batch",
            {"messages": [mail(n) for n in range(3)]},
            token=key,
        )
        assert queued == {"ok": True, "queued": 3, "rejected": []}

        # Then all three arrive, and the listing shows them sent, with their smtp_ts
        received = server.handler.wait_for(3, timeout=60)
        assert sorted(item.message["Subject"] for item in received) == [
            "Order 0",
            "Order 1",
            "Order 2",
        ]
        local_mode.wait_until(
            lambda: set(statuses(local_mode, key).values()) == {"sent"},
            what="the three messages listed as sent",
        )
        sent = ok(
            local_mode, "GET", f"/messages/get?tenant_id={TENANT}&message_id=order-0", token=key
        )
        assert sent["status"] == "sent"
        assert isinstance(sent["smtp_ts"], int)
        assert sent["pk"] == f"{TENANT}/order-0"

        # When the tenant's "later" batch is suspended and three messages of it are added
        held = ok(
            local_mode,
            "POST",
            "/instance/suspend",
            {"tenant_id": TENANT, "batch_code": "later"},
            token=key,
        )
        assert held["suspended_batches"] == ["later"]
        for n in (3, 4, 5):
            added = ok(local_mode, "POST", "/messages/add", mail(n, batch_code="later"), token=key)
            assert added["pk"] == f"{TENANT}/order-{n}"
            assert added["status"] == "pending"

        # And two of them are deleted, one by its id, one by its pk
        deleted = ok(
            local_mode,
            "POST",
            "/messages/delete_batch",
            {"tenant_id": TENANT, "ids": ["order-3"]},
            token=key,
        )
        assert deleted["removed"] == 1
        assert ok(
            local_mode, "POST", "/messages/delete", {"message_pk": f"{TENANT}/order-4"}, token=key
        )
        assert statuses(local_mode, key)["order-5"] == "pending"
        assert len(server.handler.received) == 3

        # And the batch is activated
        released = ok(
            local_mode,
            "POST",
            "/instance/activate",
            {"tenant_id": TENANT, "batch_code": "later"},
            token=key,
        )
        assert released["suspended_batches"] == []
        ok(local_mode, "POST", "/instance/run_now", {}, token=key)

        # Then only the one left arrives, and the deleted ones are gone from the listing
        received = server.handler.wait_for(4, timeout=60)
        assert received[-1].message["Subject"] == "Order 5"
        local_mode.wait_until(
            lambda: statuses(local_mode, key).get("order-5") == "sent",
            what="order-5 listed as sent",
        )
        assert sorted(statuses(local_mode, key)) == ["order-0", "order-1", "order-2", "order-5"]

        # When the tenant cleans up what is finished and reported / Then 0.7's answer
        cleaned = ok(
            local_mode,
            "GET",
            f"/messages/cleanup?tenant_id={TENANT}&older_than_seconds=0",
            token=key,
        )
        assert cleaned["ok"] is True
        assert isinstance(cleaned["removed"], int)
        remaining = statuses(local_mode, key)
        assert len(remaining) == 4 - cleaned["removed"]

        # And another tenant's key sees none of it
        other = ok(local_mode, "POST", "/tenants/add", {"id": "other07"})["api_key"]
        status, _ = local_mode.call("GET", f"/messages/list?tenant_id={TENANT}", token=other)
        assert status == 401
