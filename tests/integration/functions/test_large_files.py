"""A tenant's large_file_config at send time, through the sender handler (moto behind) to a
real SMTP server, and the download links through the api handler: reject fails the message,
warn sends it as is with a warning in the log, rewrite stores the file and mails a link that
redirects to it until file_ttl_days have passed."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests

from mailproxy import runtime
from tests.support.handlers import ApiClient, SenderDriver, account_for, message
from tests.support.smtp_servers import Received, SmtpServer
from tests.support.tenants import create_tenant, records_by_id

PUBLIC_URL = "https://mail.example.test"
TENANT_BUCKET = "acme-outgoing"
BIG = bytes(range(256)) * (3 * 1024 * 1024 // 256)  # 3 MB
SMALL = b"just a few bytes of notes"
LINK = re.compile(re.escape(PUBLIC_URL) + r"/files/([A-Za-z0-9_-]+)")
DAY = 86_400


@pytest.fixture
def deployment(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stack's settings a deployment with download links has: its public URL, and an
    allow-listed tenant bucket."""
    monkeypatch.setenv("MAILPROXY_PUBLIC_BASE_URL", PUBLIC_URL)
    monkeypatch.setenv("MAILPROXY_S3_ATTACHMENT_BUCKETS", TENANT_BUCKET)
    boto3.client("s3").create_bucket(Bucket=TENANT_BUCKET)
    runtime.reset()
    return aws


@pytest.fixture
def clock() -> Iterator[Any]:
    """The environment's clock, moved forward by a test and put back after it."""
    before = runtime.clock.offset_seconds
    yield runtime.clock
    runtime.clock.offset_seconds = before


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[dict[str, Any]]:
        """Each record as its JSON log line would carry it: the message and the extra keys."""
        return [
            {"message": r.getMessage(), "level": r.levelname, **r.__dict__} for r in self.records
        ]


@pytest.fixture
def sender_log(sender: SenderDriver) -> Iterator[Records]:
    """What the sender's (Powertools) logger writes, INFO and up, as records."""
    logger = logging.getLogger("mailproxy-sender")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def tenant_with(api: ApiClient, server: SmtpServer, **config: Any) -> None:
    create_tenant(api, "acme", large_file_config={"enabled": True, "max_size_mb": 1} | config)
    assert api.call("POST", "/account", account_for(server)) == (200, {"ok": True})


def send_with_attachments(api: ApiClient, sender: SenderDriver, **overrides: Any) -> None:
    attachments = [
        {"filename": "notes.txt", "storage_path": "base64:" + base64.b64encode(SMALL).decode()},
        {"filename": "scan.pdf", "storage_path": "base64:" + base64.b64encode(BIG).decode()},
    ]
    status, body = api.call(
        "POST",
        "/commands/add-messages",
        {"messages": [message("m1", attachments=attachments, **overrides)]},
    )
    assert (status, body["queued"]) == (200, 1), body
    sender.drain()


def attached(mail: Received) -> dict[str, bytes]:
    return {
        str(part.get_filename()): part.get_payload(decode=True)
        for part in mail.message.iter_attachments()
    }


def body_text(mail: Received, kind: str = "plain") -> str:
    part = mail.message.get_body((kind,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def open_link(api: ApiClient, token: str) -> tuple[int, dict[str, str]]:
    """GET /files/{token} as a browser sends it: no API token."""
    from infra.local.events import LambdaContext, http_event

    response = api.handler.lambda_handler(http_event("GET", f"/files/{token}"), LambdaContext())
    return response["statusCode"], response.get("headers") or {}


# -- reject ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("deployment")
def test_reject_fails_the_message_naming_the_file_and_the_limit(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a tenant that refuses attachments over 1 MB
    tenant_with(api, smtp_server, action="reject")
    # When a message with a 3 MB attachment is sent
    send_with_attachments(api, sender)
    # Then nothing reached the server
    assert smtp_server.received == []
    # and the message failed at once (no retry) with an error naming the file and the limit
    record = records_by_id(api, "acme")["m1"]
    assert record["status"] == "error"
    assert record["error"] == (
        "Attachment scan.pdf is 3.0 MB (3145728 bytes), over the tenant's large-file limit "
        "of 1 MB (large_file_config.action reject)"
    )
    assert [event["event_type"] for event in record["history"]] == ["error"]


# -- warn --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("deployment")
def test_warn_sends_the_message_as_is_and_logs_a_warning(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer, sender_log: Records
) -> None:
    # Given a tenant that only warns about attachments over 1 MB
    tenant_with(api, smtp_server, action="warn")
    # When a message with a 3 MB attachment is sent
    send_with_attachments(api, sender)
    # Then the mail arrived with both files, whole
    [mail] = smtp_server.received
    assert attached(mail) == {"notes.txt": SMALL, "scan.pdf": BIG}
    assert records_by_id(api, "acme")["m1"]["status"] == "sent"
    # and the sender logged one structured warning naming the file, its size and the limit
    [warning] = [line for line in sender_log.lines() if line["level"] == "WARNING"]
    assert warning["message"] == (
        "attachment scan.pdf of m1 (3145728 bytes, over the large-file limit of 1 MB) sent as is"
    )
    assert warning["large_file_action"] == "warn"
    assert (warning["attachment"], warning["size_bytes"], warning["max_size_mb"]) == (
        "scan.pdf",
        len(BIG),
        1,
    )
    assert warning["message_id"] == "m1"
    # with nothing of the file itself in it
    assert base64.b64encode(BIG[:48]).decode() not in json.dumps(warning, default=str)


# -- rewrite -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("deployment")
def test_rewrite_mails_a_link_that_redirects_to_the_exact_file(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer, sender_log: Records
) -> None:
    # Given a tenant that rewrites attachments over 1 MB into links kept 7 days
    tenant_with(api, smtp_server, action="rewrite", file_ttl_days=7)
    # When a message with a small and a 3 MB attachment is sent
    send_with_attachments(api, sender)
    # Then the mail keeps the small file only
    [mail] = smtp_server.received
    assert attached(mail) == {"notes.txt": SMALL}
    # and its body, after the client's text, lists the big file with its size and a link
    text = body_text(mail)
    assert text.startswith("Body of m1\n\n--\n")
    assert "- scan.pdf (3.0 MB): " + PUBLIC_URL + "/files/" in text
    [token] = LINK.findall(text)
    # When the link is opened, without any API token
    status, headers = open_link(api, token)
    # Then it redirects, uncached, to a presigned S3 URL good for five minutes
    assert status == 302
    assert headers["Cache-Control"] == "no-store"
    location = headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["response-content-disposition"][0].startswith('attachment; filename="scan.pdf"')
    # and following it gives the exact bytes
    download = requests.get(location, timeout=10)
    assert download.status_code == 200
    assert download.content == BIG
    # and the log says where the file went, never the token
    [stored] = [line for line in sender_log.lines() if line.get("large_file_action")]
    assert stored["attachment"] == "scan.pdf"
    assert stored["key"].startswith("large-files/ttl-7d/acme/")
    assert token not in json.dumps(sender_log.lines(), default=str)
    assert records_by_id(api, "acme")["m1"]["status"] == "sent"


@pytest.mark.usefixtures("deployment")
def test_an_html_message_gets_the_links_as_html(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    tenant_with(api, smtp_server, action="rewrite")
    send_with_attachments(api, sender, content_type="html", body="<p>Your scan</p>")
    [mail] = smtp_server.received
    html = body_text(mail, "html")
    assert html.startswith("<p>Your scan</p><hr><p>This attachment was too large")
    [token] = LINK.findall(html)
    assert f'<a href="{PUBLIC_URL}/files/{token}">scan.pdf</a> (3.0 MB)' in html


@pytest.mark.usefixtures("deployment")
def test_a_link_answers_404_once_file_ttl_days_have_passed(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer, clock: Any
) -> None:
    # Given a link of a tenant whose files live 2 days
    tenant_with(api, smtp_server, action="rewrite", file_ttl_days=2)
    send_with_attachments(api, sender)
    [token] = LINK.findall(body_text(smtp_server.received[0]))
    # When a day and 23 hours have passed / Then it still opens
    clock.offset_seconds += 2 * DAY - 3600
    assert open_link(api, token)[0] == 302
    # When the two days are over (before DynamoDB's TTL has removed the item)
    clock.offset_seconds += 3601
    # Then the same link is a 404
    status, _ = open_link(api, token)
    assert status == 404


@pytest.mark.usefixtures("deployment")
def test_files_go_to_the_tenants_bucket_when_it_is_allow_listed(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer, deployment: Any
) -> None:
    # Given a tenant whose storage_url is in an allow-listed bucket
    tenant_with(api, smtp_server, action="rewrite", storage_url=f"s3://{TENANT_BUCKET}/mail/large")
    # When a large file is rewritten
    send_with_attachments(api, sender)
    # Then it is stored there, under the prefix of its lifetime, and nothing in the payload bucket
    s3 = boto3.client("s3")
    [stored] = s3.list_objects_v2(Bucket=TENANT_BUCKET)["Contents"]
    assert stored["Key"].startswith("mail/large/large-files/ttl-30d/acme/")
    assert s3.get_object(Bucket=TENANT_BUCKET, Key=stored["Key"])["Body"].read() == BIG
    payloads = s3.list_objects_v2(Bucket=deployment.buckets["payloads"]).get("Contents", [])
    assert [o["Key"] for o in payloads if o["Key"].startswith("large-files/")] == []


@pytest.mark.usefixtures("deployment")
def test_a_storage_url_off_the_allow_list_uses_the_payload_bucket(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer, deployment: Any
) -> None:
    tenant_with(api, smtp_server, action="rewrite", storage_url="s3://somebody-else/x")
    send_with_attachments(api, sender)
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=deployment.buckets["payloads"])["Contents"]]
    assert [key for key in keys if key.startswith("large-files/ttl-30d/acme/")] != []


@pytest.mark.usefixtures("deployment")
def test_links_of_a_deleted_tenant_and_unknown_links_are_404(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    tenant_with(api, smtp_server, action="rewrite")
    send_with_attachments(api, sender)
    [token] = LINK.findall(body_text(smtp_server.received[0]))
    # An unknown token, a malformed one, one differing by a character: the same 404
    for other in ("A" * 43, "not-a-token", token[:-1] + ("A" if token[-1] != "A" else "B")):
        assert open_link(api, other)[0] == 404
    assert open_link(api, token)[0] == 302
    # When the tenant is deleted / Then its links stop at once
    assert api.call("DELETE", "/tenant/acme")[0] == 200
    assert open_link(api, token)[0] == 404


def test_rewrite_without_a_public_url_fails_the_message_saying_why(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer
) -> None:
    # Given a deployment that does not know its public URL
    tenant_with(api, smtp_server, action="rewrite")
    # When a large file should be rewritten
    send_with_attachments(api, sender)
    # Then the message fails, saying what is missing, and nothing was sent
    assert smtp_server.received == []
    record = records_by_id(api, "acme")["m1"]
    assert record["status"] == "error"
    assert "MAILPROXY_PUBLIC_BASE_URL" in record["error"]
