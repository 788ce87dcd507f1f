"""Every request example of genro-mail-proxy's architecture page
(../shared/reference/seed-architecture-overview.rst), replayed over HTTP against local mode as
the page writes it. Only the page's hosts are replaced by SMTP servers of this test (with
STARTTLS where the page says "use_tls": true), and each message gets the `id` the 0.6 API
requires (the page's snippets leave it out, as they leave out the token in its last curl).
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import ssl
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import trustme

from tests.support.local_mode import LocalMode, local_mode_running
from tests.support.smtp_servers import SmtpServer

PDF = b"%PDF-1.4 monthly report\n"
INVOICE = b"%PDF-1.4 invoice INV-001\n"
LOGO = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAA")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def page(ca: trustme.CA) -> Iterator[LocalMode]:
    """Local mode on a fresh state, trusting this test's CA, with the page's S3 bucket on the
    attachment allow-list."""
    with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as pem:
        pem.write(ca.cert_pem.bytes())
    env = {"SSL_CERT_FILE": pem.name, "MAILPROXY_S3_ATTACHMENT_BUCKETS": "company-documents"}
    with local_mode_running(env) as local:
        yield local


@pytest.fixture(scope="module")
def gmail() -> Iterator[SmtpServer]:
    """Stands in for smtp.gmail.com:587 with the page's user and app password."""
    with SmtpServer(credentials=("user@gmail.com", "app-password")) as server:
        yield server


@pytest.fixture(scope="module")
def providers(ca: trustme.CA) -> Iterator[SmtpServer]:
    """Stands in for SendGrid, Mailgun and SES: STARTTLS required, as "use_tls": true asks."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with SmtpServer(tls_context=context) as server:
        yield server


@pytest.fixture(scope="module")
def file_server() -> Iterator[str]:
    """Stands in for https://storage.company.com: serves the monthly report."""

    class Files(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/reports/monthly.pdf":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(PDF)))
            self.end_headers()
            self.wfile.write(PDF)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def curl_d(local: LocalMode, path: str, data: str, token: str | None = "") -> tuple[int, Any]:
    """`curl -X POST URL -H "X-API-Token: ..." -d '...'`: curl's -d sends the body as
    application/x-www-form-urlencoded, as urllib does."""
    request = urllib.request.Request(local.url + path, data=data.encode(), method="POST")
    if token is not None:
        request.add_header("X-API-Token", token or local.token)
    assert request.get_header("Content-type") is None  # urllib adds the form type, as curl
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def get_text(local: LocalMode, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(local.url + path, timeout=30) as response:
        return response.status, response.read().decode()


def records(local: LocalMode) -> dict[str, dict[str, Any]]:
    status, body = local.call("GET", "/messages?include_history=true")
    assert status == 200, body
    return {record["id"]: record for record in body["messages"]}


def arrived(server: SmtpServer, message_id: str) -> list[Any]:
    return [r for r in server.received if r.message["X-Genro-Mail-ID"] == message_id]


def test_the_migration_path_and_the_rate_limit_examples(page: LocalMode, gmail: SmtpServer) -> None:
    # Step 2: Add SMTP Account, as the page's curl sends it (no JSON content type, no tenant)
    account = (
        f'{{ "id": "smtp-main", "host": "127.0.0.1", "port": {gmail.port}, '
        '"user": "user@gmail.com", "password": "app-password" }'
    )
    assert curl_d(page, "/account", account) == (200, {"ok": True})
    # Section 4: configure the limits once, "limit_behavior": "defer" (or "error")
    limits = {
        "id": "smtp-main",
        "host": "127.0.0.1",
        "limit_per_minute": 10,
        "limit_per_hour": 500,
        "limit_behavior": "defer",
    }
    assert curl_d(page, "/account", json.dumps(limits)) == (200, {"ok": True})
    assert curl_d(page, "/account", json.dumps(limits | {"limit_behavior": "error"}))[0] == 200
    # Step 4: "Adjust rate limits if needed" changes only the minute limit
    assert curl_d(page, "/account", '{"id": "smtp-main", "limit_per_minute": 50}') == (
        200,
        {"ok": True},
    )
    [stored] = page.call("GET", "/accounts")[1]["accounts"]
    assert stored["tenant_id"] == "default"  # the page never names a tenant
    assert (stored["host"], stored["port"], stored["user"]) == (
        "127.0.0.1",
        gmail.port,
        "user@gmail.com",
    )
    assert (stored["limit_per_minute"], stored["limit_per_hour"]) == (50, 500)
    assert stored["limit_behavior"] == "reject"  # "error" is the page's word for it
    assert "password" not in stored
    # Section 1: the application's INSERT, without body, `to` one plain address
    email = {
        "id": "order-1",
        "account_id": "smtp-main",
        "from": "sales@company.com",
        "to": "customer@example.com",
        "subject": "Order #1 Confirmation",
    }
    status, body = curl_d(page, "/commands/add-messages", json.dumps({"messages": [email]}))
    assert (status, body) == (200, {"ok": True, "queued": 1, "rejected": []})
    # "Trigger async send (best effort)": the page posts run-now without a token
    assert curl_d(page, "/commands/run-now", "", token=None)[0] == 401
    assert curl_d(page, "/commands/run-now", "")[1] == {"ok": True}
    page.wait_until(lambda: arrived(gmail, "order-1"), timeout=30, what="order-1")
    [sent] = arrived(gmail, "order-1")
    assert sent.message["To"] == "customer@example.com"
    assert sent.message.get_content().strip() == ""
    # Resubmitting it ("can resend failed emails from DB"): already sent is a normal answer
    assert curl_d(page, "/commands/add-messages", json.dumps({"messages": [email]})) == (
        200,
        {"ok": True, "queued": 0, "rejected": [{"id": "order-1", "reason": "already sent"}]},
    )
    # Step 4: Check metrics, with the page's curl (no token) and its names
    status, text = get_text(page, "/metrics")
    assert status == 200
    assert re.search(
        r'^mail_sent_total\{account_id="smtp-main",tenant_id="default"\} 1(\.0)?$',
        text,
        re.MULTILINE,
    )
    assert re.search(r"^mail_pending 0(\.0)?$", text, re.MULTILINE)
    for name in ("mail_error_total", "mail_deferred_total", "mail_rate_limited_total"):
        assert f"# TYPE {name} counter" in text


def test_multi_account_routing_priorities_and_scheduling(
    page: LocalMode, providers: SmtpServer
) -> None:
    # Section 6: the page's three accounts; it gives them no port, which a new account needs
    accounts = [
        {"id": "transactional", "host": "127.0.0.1", "limit_per_minute": 100, "use_tls": True},
        {"id": "marketing", "host": "127.0.0.1", "limit_per_minute": 50, "use_tls": True},
        {"id": "notifications", "host": "127.0.0.1", "limit_per_minute": 10, "use_tls": True},
    ]
    for account in accounts:
        status, body = curl_d(page, "/account", json.dumps(account))
        assert status == 422
        assert [item["loc"] for item in body["detail"]] == [["body", "port"]]
        assert curl_d(page, "/account", json.dumps(account | {"port": providers.port}))[0] == 200
    # Route by purpose, priorities as numbers and labels (section 9)
    messages = [
        {"id": "order", "account_id": "transactional", "priority": 0,
         "from": "orders@company.com", "to": "customer@example.com",
         "subject": "Order Confirmation"},
        {"id": "newsletter", "account_id": "marketing", "priority": 3,
         "from": "newsletter@company.com", "to": "subscriber@example.com",
         "subject": "Monthly Newsletter"},
        {"id": "alert", "account_id": "notifications", "priority": "immediate",
         "from": "alerts@company.com", "to": "admin@example.com", "subject": "System Alert"},
        {"id": "comment", "account_id": "notifications", "priority": "medium",
         "from": "alerts@company.com", "to": "admin@example.com", "subject": "New Comment"},
        {"id": "confirm", "account_id": "transactional", "priority": "high",
         "from": "orders@company.com", "to": "customer@example.com",
         "subject": "Order Confirmation"},
        # Section 10: "Send tomorrow morning"
        {"id": "reminder", "account_id": "notifications", "from": "alerts@company.com",
         "to": "admin@example.com", "subject": "Appointment Reminder",
         "body": "Your appointment is today at 10 AM", "deferred_ts": 4_102_444_800},
    ]  # fmt: skip
    status, body = curl_d(page, "/commands/add-messages", json.dumps({"messages": messages}))
    assert (status, body) == (200, {"ok": True, "queued": 6, "rejected": []})
    sent = ("order", "newsletter", "alert", "comment", "confirm")
    page.wait_until(
        lambda: all(arrived(providers, i) for i in sent), timeout=60, what="five deliveries"
    )
    stored = records(page)
    assert {stored[i]["priority"] for i in ("order", "alert")} == {0}
    assert (stored["confirm"]["priority"], stored["comment"]["priority"]) == (1, 2)
    assert stored["newsletter"]["priority"] == 3
    assert stored["reminder"]["status"] == "scheduled"
    assert not arrived(providers, "reminder")


def test_the_three_attachment_sources(page: LocalMode, gmail: SmtpServer, file_server: str) -> None:
    # Given the page's S3 object, in the local emulation's S3
    endpoint = next(line.split()[2] for line in page.lines if line.strip().startswith("AWS (moto)"))
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    s3.create_bucket(Bucket="company-documents")
    s3.put_object(Bucket="company-documents", Key="invoices/2025/INV-001.pdf", Body=INVOICE)
    # When a message carries section 8's three attachments (the URL on this test's server)
    message = {
        "id": "attachments",
        "account_id": "smtp-main",
        "from": "billing@company.com",
        "to": "customer@example.com",
        "subject": "Your documents",
        "attachments": [
            {
                "filename": "invoice.pdf",
                "s3": {"bucket": "company-documents", "key": "invoices/2025/INV-001.pdf"},
            },
            {"filename": "report.pdf", "url": f"{file_server}/reports/monthly.pdf"},
            {"filename": "logo.png", "content": "iVBORw0KGgoAAAANSUhEUgAA"},
        ],
    }
    status, body = curl_d(page, "/commands/add-messages", json.dumps({"messages": [message]}))
    assert (status, body) == (200, {"ok": True, "queued": 1, "rejected": []})
    # Then the mail holds each file, byte for byte
    page.wait_until(lambda: arrived(gmail, "attachments"), timeout=30, what="the attachments")
    [received] = arrived(gmail, "attachments")
    files = {
        part.get_filename(): part.get_content() for part in received.message.iter_attachments()
    }
    assert files == {"invoice.pdf": INVOICE, "report.pdf": PDF, "logo.png": LOGO}
