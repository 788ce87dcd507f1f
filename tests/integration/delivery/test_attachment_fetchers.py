"""Attachment fetching against real HTTP servers on 127.0.0.1 and a moto S3.

Nothing here may reach any address but loopback: every connection goes through a spy on
urllib3's create_connection that fails the test for any other address. A forbidden destination
is refused before connecting, so it never reaches the spy."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailproxy.delivery.attachments import (
    EndpointAuth,
    FetchContext,
    fetch_all,
    fetch_one,
    tenant_endpoint_url,
)
from mailproxy.delivery.mime import FetchedAttachment
from mailproxy.domain.errors import DeliveryError
from mailproxy.domain.message import Attachment
from mailproxy.domain.tenant import Tenant
from mailproxy.outbound_http import UrlPolicy, guarded_session
from tests.support.http_servers import HttpServer, Recorded, Reply, redirect
from tests.support.streaming_http import Streamed, streaming_server

pytestmark = pytest.mark.timeout(20)

LOOPBACK = UrlPolicy(allow_loopback=True)
CONTENT = b"%PDF-1.4 quarterly report"
MD5 = hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()


@dataclass
class ConnectionSpy:
    """Stands in for urllib3's create_connection: records every address, lets only loopback
    through."""

    real: Callable[..., Any]
    attempts: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        self.attempts.append((host, port))
        if not ipaddress.ip_address(host.strip("[]").split("%", 1)[0]).is_loopback:
            raise AssertionError(f"a test tried to connect to {host}")
        return self.real(address, *args, **kwargs)


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> ConnectionSpy:
    from urllib3.util import connection

    spy = ConnectionSpy(connection.create_connection)
    monkeypatch.setattr(connection, "create_connection", spy)
    return spy


def context(**fields: Any) -> FetchContext:
    settings: dict[str, Any] = {"url_policy": LOOPBACK, "timeout_seconds": 5.0} | fields
    return FetchContext(**settings)


def url_attachment(url: str, filename: str = "report.pdf", **fields: Any) -> Attachment:
    return Attachment.model_validate({"filename": filename, "storage_path": url} | fields)


def failure(attachments: list[Attachment], ctx: FetchContext) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        fetch_all(attachments, ctx)
    assert not caught.value.temporary
    return caught.value


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def files() -> Iterator[HttpServer]:
    with HttpServer(
        {
            "/report.pdf": Reply(200, CONTENT, {"Content-Type": "application/pdf"}),
            "/missing.pdf": Reply(404, b"no such file"),
            "/broken.pdf": Reply(500, b"oops"),
            "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
            "/moved.pdf": redirect("/report.pdf"),
        }
    ) as server:
        yield server


# --- http_url ---


def test_a_url_attachment_is_downloaded(files: HttpServer) -> None:
    # Given a file on a server / When its URL is fetched
    fetched = fetch_one(
        url_attachment(files.url("/report.pdf"), mime_type="application/pdf"), context()
    )

    # Then its bytes come back, with the given MIME type, from one GET
    assert fetched == FetchedAttachment("report.pdf", CONTENT, "application/pdf")
    assert [(r.method, r.path) for r in files.received] == [("GET", "/report.pdf")]


def test_a_url_attachment_follows_a_redirect_on_the_same_server(files: HttpServer) -> None:
    assert fetch_one(url_attachment(files.url("/moved.pdf")), context()).content == CONTENT
    assert files.paths() == ["/moved.pdf", "/report.pdf"]


def test_bearer_auth_is_sent_to_the_server(files: HttpServer) -> None:
    # Given an attachment with bearer auth
    attachment = url_attachment(
        files.url("/report.pdf"), auth={"method": "bearer", "token": "s3cret-token"}
    )
    # When fetched / Then the server saw the token
    assert fetch_one(attachment, context()).content == CONTENT
    assert files.received[0].header("Authorization") == "Bearer s3cret-token"


def test_basic_auth_is_sent_to_the_server(files: HttpServer) -> None:
    attachment = url_attachment(
        files.url("/report.pdf"), auth={"method": "basic", "user": "anna", "password": "pw:1"}
    )
    assert fetch_one(attachment, context()).content == CONTENT
    assert files.received[0].header("Authorization") == basic("anna", "pw:1")


def test_no_auth_sends_no_authorization(files: HttpServer) -> None:
    fetch_one(url_attachment(files.url("/report.pdf"), auth={"method": "none"}), context())
    assert files.received[0].header("Authorization") is None


@pytest.mark.parametrize(("path", "status"), [("/missing.pdf", 404), ("/broken.pdf", 500)])
def test_an_error_status_is_a_permanent_failure_naming_the_file(
    files: HttpServer, path: str, status: int
) -> None:
    error = failure([url_attachment(files.url(path), filename="q1.pdf")], context())
    assert error.text.startswith(f"Attachment fetch failed for q1.pdf: HTTP {status} ")


def test_the_md5_of_a_downloaded_file_is_checked(files: HttpServer) -> None:
    # Given the right md5, then a wrong one
    good = url_attachment(files.url("/report.pdf"), content_md5=MD5)
    bad = url_attachment(files.url("/report.pdf"), content_md5="0" * 32)

    # Then the first is accepted and the second fails
    assert fetch_one(good, context()).content == CONTENT
    assert "content_md5 does not match the content" in failure([bad], context()).text


def test_a_redirect_to_the_metadata_address_is_refused(
    files: HttpServer, connections: ConnectionSpy
) -> None:
    # Given a server that redirects to the cloud metadata address
    # When the URL is fetched / Then the redirect is refused before any connection to it
    error = failure([url_attachment(files.url("/to-metadata"))], context())
    assert "destination not allowed" in error.text
    assert "cloud metadata address" in error.text
    assert connections.attempts == [("127.0.0.1", files.port)]


def test_loopback_is_refused_unless_the_policy_allows_it(
    files: HttpServer, connections: ConnectionSpy
) -> None:
    # Given the default policy / When a loopback URL is fetched
    error = failure([url_attachment(files.url("/report.pdf"))], context(url_policy=UrlPolicy()))

    # Then it fails as a blocked destination, and nothing was contacted
    assert "a loopback address" in error.text
    assert connections.attempts == []
    assert files.received == []


def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(
    files: HttpServer, connections: ConnectionSpy
) -> None:
    # Given a name that resolves to a private address (an injected resolver)
    session = guarded_session(LOOPBACK, lambda host, port: ["10.20.30.40"])
    attachment = url_attachment(f"http://files.internal.test:{files.port}/report.pdf")

    # When fetched / Then it is refused after resolution, before any connection
    error = failure([attachment], context(session=session))
    assert "a private or reserved address" in error.text
    assert connections.attempts == []


def test_a_name_resolving_to_loopback_is_fetched_with_an_injected_session(
    files: HttpServer,
) -> None:
    session = guarded_session(LOOPBACK, lambda host, port: ["127.0.0.1"])
    attachment = url_attachment(f"http://files.test:{files.port}/report.pdf")
    assert fetch_one(attachment, context(session=session)).content == CONTENT
    assert files.received[0].header("Host") == f"files.test:{files.port}"


# --- deadlines ---


@pytest.fixture
def slow() -> Iterator[HttpServer]:
    release = threading.Event()

    def late(request: Recorded) -> Reply:
        release.wait(3)
        return Reply(200, CONTENT)

    with HttpServer({"/late.pdf": late}) as server:
        yield server
        release.set()


def test_a_server_that_does_not_answer_in_time_fails_within_the_timeout(slow: HttpServer) -> None:
    # Given a server that answers after 3 s and a 0.3 s timeout
    started = time.monotonic()

    # When the file is fetched / Then it fails as a timeout, soon after 0.3 s
    error = failure([url_attachment(slow.url("/late.pdf"))], context(timeout_seconds=0.3))
    assert error.text == "Attachment fetch failed for report.pdf: timed out after 0.3 s"
    assert time.monotonic() - started < 2.5  # the server's 3 s answer was not waited for


def test_a_body_that_trickles_in_fails_at_the_overall_deadline() -> None:
    # Given a server that sends 200 bytes, one every 50 ms (10 s in all): no single read is
    # ever slow, only the whole
    with streaming_server(Streamed(b"x" * 200, piece_bytes=1, pause_seconds=0.05)) as port:
        started = time.monotonic()

        # When fetched with a 0.5 s timeout / Then it fails as a timeout, near 0.5 s
        error = failure(
            [url_attachment(f"http://127.0.0.1:{port}/a.bin", filename="a.bin")],
            context(timeout_seconds=0.5),
        )
    assert error.text == "Attachment fetch failed for a.bin: timed out after 0.5 s"
    assert time.monotonic() - started < 5  # not the 10 s the body takes to trickle in


# --- size cap ---


def test_a_body_over_the_cap_fails(files: HttpServer) -> None:
    # Given a cap smaller than the file (the server declares its length)
    error = failure(
        [url_attachment(files.url("/report.pdf"))], context(max_total_bytes=len(CONTENT) - 1)
    )
    assert f"may total at most {len(CONTENT) - 1} bytes" in error.text


def test_a_body_without_a_length_is_cut_at_the_cap() -> None:
    # Given a server streaming 1 MiB without a Content-Length, and a cap of 100 KiB
    streamed = Streamed(
        b"y" * (1 << 20), piece_bytes=16 * 1024, pause_seconds=0.001, content_length=False
    )
    with streaming_server(streamed) as port:
        # When fetched / Then it fails on the cap, without reading it all
        error = failure(
            [url_attachment(f"http://127.0.0.1:{port}/big.bin", filename="big.bin")],
            context(max_total_bytes=100 * 1024),
        )
    assert error.text == (
        "Attachment fetch failed for big.bin: the attachments of a message may total at most "
        f"{100 * 1024} bytes"
    )


def test_the_cap_counts_all_the_files_of_a_message(files: HttpServer) -> None:
    # Given two files that fit the cap alone but not together
    attachments = [
        url_attachment(files.url("/report.pdf"), filename=name) for name in ("a.pdf", "b.pdf")
    ]
    ctx = context(max_total_bytes=len(CONTENT) * 2 - 1, max_parallel=1)

    # Then the second fails
    assert "Attachment fetch failed for b.pdf: " in failure(attachments, ctx).text
    assert fetch_all(attachments, context(max_total_bytes=len(CONTENT) * 2))[1].content == CONTENT


# --- parallelism ---


def test_at_most_three_fetches_run_at_once_and_the_order_is_kept() -> None:
    # Given a server that counts the requests it serves at the same time (each takes 0.2 s)
    lock = threading.Lock()
    running = 0
    most = 0

    def counted(request: Recorded) -> Reply:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        return Reply(200, request.path.encode())

    with HttpServer(fallback=counted) as server:
        attachments = [
            url_attachment(server.url(f"/file-{i}"), filename=f"file-{i}") for i in range(6)
        ]

        # When the six are fetched
        fetched = fetch_all(attachments, context())

    # Then never more than three ran at once, in two waves, and the order is the one given
    assert most == 3
    assert [item.content for item in fetched] == [f"/file-{i}".encode() for i in range(6)]


def test_one_failure_stops_the_message_while_others_are_slow(slow: HttpServer) -> None:
    # Given a slow file and a missing one
    with HttpServer({"/gone": Reply(404)}) as other:
        attachments = [
            url_attachment(slow.url("/late.pdf"), filename="slow.pdf"),
            url_attachment(other.url("/gone"), filename="gone.pdf"),
        ]
        started = time.monotonic()

        # When fetched / Then the missing one fails the message at once
        error = failure(attachments, context())
    assert error.text.startswith("Attachment fetch failed for gone.pdf: HTTP 404")
    assert time.monotonic() - started < 2.5  # the slow one's 3 s was not waited for


# --- endpoint ---


@dataclass
class Endpoint:
    server: HttpServer
    url: str


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    def answer(request: Recorded) -> Reply:
        path = json.loads(request.body)["storage_path"]
        if path == "doc-42":
            return Reply(200, CONTENT, {"Content-Type": "application/pdf"})
        if path == "doc-json":
            wrapped = {"content": base64.b64encode(CONTENT).decode()}
            return Reply(200, json.dumps(wrapped).encode(), {"Content-Type": "application/json"})
        return Reply(404, b"unknown")

    with HttpServer({"/erp/mail-proxy/attachments": answer}) as server:
        tenant = Tenant(id="acme", created_at=0, updated_at=0, client_base_url=server.url("/erp"))
        url = tenant_endpoint_url(tenant)
        assert url is not None
        yield Endpoint(server, url)


def test_an_endpoint_attachment_is_posted_with_the_tenant_bearer_auth(endpoint: Endpoint) -> None:
    # Given a tenant endpoint with bearer auth
    ctx = context(
        endpoint_url=endpoint.url, endpoint_auth=EndpointAuth("bearer", None, "tenant-tok")
    )

    # When an endpoint attachment is fetched
    fetched = fetch_one(Attachment(filename="invoice.pdf", storage_path="doc-42"), ctx)

    # Then the endpoint got POST {"storage_path": ...} with the tenant's token, and its bytes
    assert fetched.content == CONTENT
    [received] = endpoint.server.received
    assert (received.method, received.path) == ("POST", "/erp/mail-proxy/attachments")
    assert json.loads(received.body) == {"storage_path": "doc-42"}
    assert received.header("Content-Type") == "application/json"
    assert received.header("Authorization") == "Bearer tenant-tok"


def test_an_endpoint_may_answer_json_with_base64_content(endpoint: Endpoint) -> None:
    ctx = context(endpoint_url=endpoint.url, endpoint_auth=EndpointAuth("basic", "erp", "pw"))
    attachment = Attachment(filename="invoice.pdf", storage_path="doc-json", content_md5=MD5)
    assert fetch_one(attachment, ctx).content == CONTENT
    assert endpoint.server.received[0].header("Authorization") == basic("erp", "pw")


def test_a_json_answer_is_capped_at_its_decoded_size(endpoint: Endpoint) -> None:
    # Given a cap that fits the file but not its base64 text
    ctx = context(endpoint_url=endpoint.url, max_total_bytes=len(CONTENT))
    attachment = Attachment(filename="invoice.pdf", storage_path="doc-json")
    assert fetch_one(attachment, ctx).content == CONTENT
    # And one byte less fails
    smaller = context(endpoint_url=endpoint.url, max_total_bytes=len(CONTENT) - 1)
    assert "may total at most" in failure([attachment], smaller).text


def test_an_endpoint_error_fails_permanently(endpoint: Endpoint) -> None:
    ctx = context(endpoint_url=endpoint.url)
    error = failure([Attachment(filename="x.pdf", storage_path="doc-missing")], ctx)
    assert error.text == (
        "Attachment fetch failed for x.pdf: "
        "HTTP 404 Not Found from the tenant's attachment endpoint"
    )


def test_an_endpoint_attachment_without_a_tenant_url_fails(endpoint: Endpoint) -> None:
    error = failure([Attachment(filename="x.pdf", storage_path="doc-42")], context())
    assert "no client_base_url" in error.text
    assert endpoint.server.received == []


def test_the_endpoint_is_guarded_too(endpoint: Endpoint, connections: ConnectionSpy) -> None:
    # Given a tenant URL on loopback and a policy that does not allow it
    ctx = context(url_policy=UrlPolicy(), endpoint_url=endpoint.url)
    error = failure([Attachment(filename="x.pdf", storage_path="doc-42")], ctx)
    assert "a loopback address" in error.text
    assert connections.attempts == []


# --- s3 (moto) ---


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in ("attachments", "elsewhere"):
            client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="2024/q1 report.pdf", Body=CONTENT)
        yield client


def s3_context(client: Any) -> FetchContext:
    return context(s3_buckets=frozenset({"attachments"}), s3_client=client)


def test_an_object_of_an_allowed_bucket_is_read(s3: Any) -> None:
    attachment = Attachment(
        filename="q1.pdf", storage_path="s3://attachments/2024/q1 report.pdf", content_md5=MD5
    )
    assert fetch_one(attachment, s3_context(s3)).content == CONTENT


def test_a_bucket_not_allowed_is_refused(s3: Any) -> None:
    attachment = Attachment(filename="q1.pdf", storage_path="s3://elsewhere/2024/q1 report.pdf")
    error = failure([attachment], s3_context(s3))
    assert error.text == "Attachment fetch failed for q1.pdf: S3 bucket 'elsewhere' is not allowed"


def test_a_missing_key_fails_permanently(s3: Any) -> None:
    attachment = Attachment(filename="q2.pdf", storage_path="s3://attachments/2024/q2.pdf")
    error = failure([attachment], s3_context(s3))
    assert error.text == (
        "Attachment fetch failed for q2.pdf: S3 NoSuchKey for s3://attachments/2024/q2.pdf"
    )


def test_an_object_over_the_cap_fails(s3: Any) -> None:
    attachment = Attachment(filename="q1.pdf", storage_path="s3://attachments/2024/q1 report.pdf")
    ctx = FetchContext(
        url_policy=LOOPBACK,
        s3_buckets=frozenset({"attachments"}),
        s3_client=s3,
        max_total_bytes=10,
    )
    assert "may total at most 10 bytes" in failure([attachment], ctx).text


def test_every_mode_in_one_message_keeps_its_order(
    s3: Any, files: HttpServer, endpoint: Endpoint
) -> None:
    # Given one attachment of each mode
    attachments = [
        Attachment(filename="1.pdf", storage_path="s3://attachments/2024/q1 report.pdf"),
        Attachment(filename="2.txt", storage_path="base64:" + base64.b64encode(b"two").decode()),
        url_attachment(files.url("/report.pdf"), filename="3.pdf"),
        Attachment(filename="4.pdf", storage_path="doc-42"),
    ]
    ctx = FetchContext(
        url_policy=LOOPBACK,
        s3_buckets=frozenset({"attachments"}),
        s3_client=lambda: s3,
        endpoint_url=endpoint.url,
    )
    # When fetched / Then each has its content, in the order given
    fetched = fetch_all(attachments, ctx)
    assert [(item.filename, item.content) for item in fetched] == [
        ("1.pdf", CONTENT),
        ("2.txt", b"two"),
        ("3.pdf", CONTENT),
        ("4.pdf", CONTENT),
    ]
