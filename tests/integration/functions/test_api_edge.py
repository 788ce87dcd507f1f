"""The hardened edge as a client meets it: injection, tenant URLs, attachment sources, sizes,
and secrets that never come back out."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import SmtpServer


def add(api: ApiClient, *messages: dict[str, Any]) -> tuple[int, Any]:
    return api.call("POST", "/commands/add-messages", {"messages": list(messages)})


def locs(body: Any) -> list[list[Any]]:
    return [item["loc"] for item in body["detail"]]


def stored_ids(api: ApiClient) -> list[str]:
    return [record["id"] for record in api.call("GET", "/messages")[1]["messages"]]


@pytest.mark.parametrize(
    ("field", "value", "loc_tail"),
    [
        ("subject", "Hello\r\nBcc: victim@example.test", ["subject"]),
        ("headers", {"X-Tag": "a\nBcc: victim@example.test"}, ["headers", "X-Tag"]),
        ("to", ["user@example.test\r\nBcc: victim@example.test"], ["to", 0]),
        ("reply_to", "a@example.test\nX: y", ["reply_to"]),
        ("headers", {"Bcc": "victim@example.test"}, ["headers", "Bcc", "[key]"]),
        ("to", ["not-an-address"], ["to", 0]),
    ],
)
def test_header_injection_and_bad_addresses_are_a_422_naming_the_field(
    api: ApiClient, field: str, value: Any, loc_tail: list[Any]
) -> None:
    # Given a message smuggling a header or carrying a malformed address / When submitted
    status, body = add(api, message("m1", **{field: value}))
    # Then the request is refused as a whole, naming the field, and nothing is stored
    assert status == 422
    assert any(loc[-len(loc_tail) :] == loc_tail for loc in locs(body)), body
    assert stored_ids(api) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://127.0.0.1:8080/sync",
        "http://10.0.0.5/",
        "file:///etc/passwd",
        "gopher://example.test/",
    ],
)
def test_a_tenant_url_into_the_proxy_network_is_refused(api: ApiClient, url: str) -> None:
    # Given a deployment (loopback not allowed) / When a tenant is given such a URL
    status, body = api.call("POST", "/tenant", {"id": "acme", "client_base_url": url})
    # Then 422 naming client_base_url, and the tenant is not created
    assert status == 422
    assert ["body", "client_base_url"] in locs(body)
    assert api.call("GET", "/tenant/acme")[0] == 404


def test_a_tenant_url_change_into_the_proxy_network_is_refused(api: ApiClient) -> None:
    assert (
        api.call("POST", "/tenant", {"id": "acme", "client_base_url": "https://acme.test"})[0]
        == 200
    )
    status, _ = api.call("PUT", "/tenant/acme", {"client_base_url": "http://169.254.169.254/"})
    assert status == 422
    assert api.call("GET", "/tenant/acme")[1]["client_base_url"] == "https://acme.test"


@pytest.mark.parametrize(
    "storage_path",
    ["http://127.0.0.1/file.pdf", "http://169.254.169.254/x", "s3://not-allowed-bucket/key.pdf"],
)
def test_attachment_sources_outside_what_the_deployment_allows_are_refused(
    api: ApiClient, storage_path: str
) -> None:
    attachment = {"filename": "file.pdf", "storage_path": storage_path}
    status, body = add(api, message("m1", attachments=[attachment]))
    assert status == 422
    assert ["body", "messages", 0, "attachments", 0, "storage_path"] in locs(body)
    assert stored_ids(api) == []


def test_a_message_over_the_size_cap_is_a_413_and_nothing_is_stored(api: ApiClient) -> None:
    # Given a message whose body and inline attachment together pass the 10 MiB cap
    big = base64.b64encode(b"x" * (5 * 1024 * 1024)).decode()
    attachment = {"filename": "big.bin", "storage_path": f"base64:{big}"}
    huge = message("big", body="y" * (4 * 1024 * 1024), attachments=[attachment])
    # When submitted beside a small one / Then 413 naming the message, and neither is stored
    status, body = add(api, message("small"), huge)
    assert status == 413
    assert "big" in body["detail"]
    assert stored_ids(api) == []


def test_a_large_message_is_stored_apart_and_delivered_whole(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer, aws: Any
) -> None:
    import boto3

    # Given a message of about 3 MB (far over one DynamoDB item)
    content = bytes(range(256)) * (3 * 1024 * 1024 // 256)
    attachment = {
        "filename": "report.bin",
        "storage_path": "base64:" + base64.b64encode(content).decode(),
    }
    assert api.call("POST", "/account", account_for(smtp_server))[0] == 200
    # When it is submitted and delivered
    assert add(api, message("large", attachments=[attachment])) == (
        200,
        {"ok": True, "queued": 1, "rejected": []},
    )
    sender.drain()
    # Then its payload lives in the payload bucket, and the mail arrives with every byte
    objects = boto3.client("s3").list_objects_v2(Bucket=aws.buckets["payloads"])
    assert objects.get("KeyCount", 0) == 1
    [mail] = smtp_server.received
    [part] = list(mail.message.iter_attachments())
    assert part.get_content() == content
    assert api.call("GET", "/messages")[1]["messages"][0]["status"] == "sent"


def test_smtp_passwords_are_never_returned_nor_logged(
    api: ApiClient, sender: SenderDriver, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    # Given an account with a password on a server that requires it
    password = "correct-horse-battery-staple"
    caplog.set_level(logging.DEBUG)
    with SmtpServer(credentials=("mailer", password)) as server:
        account = account_for(server, user="mailer", password=password)
        assert api.call("POST", "/account", account) == (200, {"ok": True})
        # When a message is delivered through it and everything is listed
        assert add(api, message("m1"))[0] == 200
        sender.drain()
        assert len(server.received) == 1
    # Then no answer and no log line carries the password
    answers = [api.call("GET", "/accounts")[1], api.call("GET", "/messages")[1]]
    assert password not in repr(answers)
    assert password not in caplog.text
    captured = capsys.readouterr()
    assert password not in captured.out + captured.err
