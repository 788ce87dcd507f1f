"""Message bodies are stored compressed (DynamoDB bills writes per KB of item), and bodies
stored plain by an earlier version are still delivered."""

from __future__ import annotations

import json
import zlib
from typing import Any

import boto3
import pytest

from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import SmtpServer

NEWSLETTER = "".join(
    f"<tr><td>Item {n}</td><td>Our pick of the week, number {n}</td></tr>" for n in range(300)
)


@pytest.fixture
def with_account(api: ApiClient, smtp_server: SmtpServer) -> SmtpServer:
    assert api.call("POST", "/account", account_for(smtp_server)) == (200, {"ok": True})
    return smtp_server


def body_item(aws: Any, message_id: str) -> dict[str, Any]:
    table = aws.table("bodies")
    key = {"tenant_id": {"S": "acme"}, "id": {"S": message_id}}
    return dict(boto3.client("dynamodb").get_item(TableName=table, Key=key)["Item"])


@pytest.mark.usefixtures("with_account")
def test_a_body_is_stored_compressed_and_delivered_as_submitted(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given an HTML newsletter of about 20 KB
    newsletter = message("news", body=f"<table>{NEWSLETTER}</table>", content_type="html")
    status, _ = api.call("POST", "/commands/add-messages", {"messages": [newsletter]})
    assert status == 200

    # Then its body item holds it compressed, in a fraction of its size
    item = body_item(aws, "news")
    assert "payload" not in item
    packed = item["payload_zlib"]["B"]
    assert len(packed) * 5 < len(json.dumps(newsletter))
    assert json.loads(zlib.decompress(packed))["body"] == newsletter["body"]

    # And when it is delivered, the mail carries the body as submitted
    sender.drain()
    [mail] = smtp_server.received
    assert mail.message.get_body().get_content().strip() == newsletter["body"]


@pytest.mark.usefixtures("with_account")
def test_a_body_stored_plain_by_an_earlier_version_is_still_delivered(
    api: ApiClient, aws: Any, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a queued message whose body item is in the earlier, uncompressed form
    status, _ = api.call("POST", "/commands/add-messages", {"messages": [message("old")]})
    assert status == 200
    item = body_item(aws, "old")
    payload = json.loads(zlib.decompress(item.pop("payload_zlib")["B"]))
    item["payload"] = {"S": json.dumps(payload)}
    boto3.client("dynamodb").put_item(TableName=aws.table("bodies"), Item=item)

    # When the sender delivers it
    sender.drain()

    # Then it goes as it was submitted
    [mail] = smtp_server.received
    assert mail.message["X-Genro-Mail-ID"] == "old"
    assert mail.message.get_body().get_content().strip() == payload["body"]
