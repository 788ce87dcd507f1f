"""Attachment contents: the decisions (mode, prechecks, credentials, S3 location, endpoint answer,
md5), inline base64, the size cap, the order, and the way a fetch stops. No network: S3 is a fake
client here (moto and real HTTP servers are in tests/integration/delivery)."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailproxy.delivery.attachments import (
    INLINE_ONLY,
    EndpointAuth,
    FetchContext,
    credential_headers,
    endpoint_content,
    fetch_all,
    fetch_one,
    md5_problem,
    precheck,
    tenant_endpoint_auth,
    tenant_endpoint_url,
    uses_endpoint,
)
from mailproxy.delivery.mime import FetchedAttachment
from mailproxy.domain.errors import DeliveryError
from mailproxy.domain.message import Attachment
from mailproxy.domain.tenant import StoredClientAuth, Tenant
from mailproxy.outbound_http import UrlPolicy

pytestmark = pytest.mark.timeout(10)

CONTENT = b"%PDF-1.4 invoice"
ENCODED = base64.b64encode(CONTENT).decode()
MD5 = hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()


def inline(filename: str, content: bytes, **fields: Any) -> Attachment:
    return Attachment(
        filename=filename, storage_path="base64:" + base64.b64encode(content).decode(), **fields
    )


def failure(call: Any, *args: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        call(*args)
    assert not caught.value.temporary
    return caught.value


@dataclass
class FakeS3:
    """get_object from a dict of keys -> bytes; a key may be made slow, or to fail."""

    objects: dict[str, bytes]
    delays: dict[str, float] = field(default_factory=dict)
    failing: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append(Key)
        time.sleep(self.delays.get(Key, 0))
        if Key in self.failing:
            raise self.failing[Key]
        data = self.objects[Key]
        return {"Body": io.BytesIO(data), "ContentLength": len(data)}


def s3_context(client: Any, **fields: Any) -> FetchContext:
    return FetchContext(
        url_policy=UrlPolicy(), s3_buckets=frozenset({"files"}), s3_client=client, **fields
    )


def s3_attachment(key: str) -> Attachment:
    return Attachment(filename=f"{key}.bin", storage_path=f"s3://files/{key}")


# --- inline base64 ---


def test_inline_base64_is_decoded() -> None:
    # Given an inline attachment with a MIME type / When fetched / Then its bytes and type
    attachment = Attachment(
        filename="invoice.pdf", storage_path=f"base64:{ENCODED}", mime_type="application/pdf"
    )
    assert fetch_one(attachment) == FetchedAttachment("invoice.pdf", CONTENT, "application/pdf")


def test_explicit_base64_mode_without_prefix() -> None:
    # Given fetch_mode base64, the prefix left out / Then the text is the content; no MIME type
    attachment = Attachment(filename="a.pdf", storage_path=ENCODED, fetch_mode="base64")
    assert fetch_all([attachment]) == [FetchedAttachment("a.pdf", CONTENT, None)]


def test_explicit_base64_mode_with_prefix() -> None:
    attachment = Attachment(filename="a.pdf", storage_path=f"base64:{ENCODED}", fetch_mode="base64")
    assert fetch_one(attachment).content == CONTENT


def test_a_matching_md5_is_accepted_in_any_case() -> None:
    attachment = Attachment(
        filename="a.pdf", storage_path=f"base64:{ENCODED}", content_md5=MD5.upper()
    )
    assert fetch_one(attachment).content == CONTENT


def test_no_attachments_is_no_contents() -> None:
    assert fetch_all([]) == []


@pytest.mark.parametrize(
    ("attachment", "detail"),
    [
        (Attachment(filename="a.pdf", storage_path="base64:not base64!"), "invalid base64"),
        (
            Attachment(filename="a.pdf", storage_path=f"base64:{ENCODED}", content_md5="0" * 32),
            "content_md5 does not match the content",
        ),
        (
            Attachment(filename="a.pdf", storage_path="https://files.test/a.pdf"),
            "fetch mode 'http_url' is not enabled",
        ),
        (
            Attachment(filename="a.pdf", storage_path="s3://files/a.pdf"),
            "fetch mode 's3' is not enabled",
        ),
        (
            Attachment(filename="a.pdf", storage_path="doc-42"),
            "fetch mode 'endpoint' is not enabled",
        ),
    ],
    ids=["bad base64", "md5 mismatch", "no url without context", "no s3", "no endpoint"],
)
def test_a_fetch_failure_is_permanent_and_names_the_file(
    attachment: Attachment, detail: str
) -> None:
    # Given an attachment that cannot be fetched (without a context: inline only)
    # When it is fetched / Then the message fails, no retry, naming the file
    error = failure(fetch_one, attachment)
    assert error.text.startswith("Attachment fetch failed for a.pdf: ")
    assert detail in error.text


# --- mode resolution and prechecks ---


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        ({"storage_path": "base64:QUJD"}, "base64"),
        ({"storage_path": "http://files.test/a"}, "http_url"),
        ({"storage_path": "https://files.test/a"}, "http_url"),
        ({"storage_path": "s3://files/a"}, "s3"),
        ({"storage_path": "doc-42"}, "endpoint"),
        ({"storage_path": "QUJD", "fetch_mode": "base64"}, "base64"),
        ({"storage_path": "https://files.test/a", "fetch_mode": "endpoint"}, "endpoint"),
        ({"storage_path": "base64:QUJD", "fetch_mode": "http_url"}, "http_url"),
    ],
)
def test_the_fetch_mode_is_explicit_or_read_from_the_path(
    fields: dict[str, str], mode: str
) -> None:
    attachment = Attachment.model_validate({"filename": "a.bin"} | fields)
    assert attachment.resolved_fetch_mode == mode


def test_prechecks_of_a_full_context_pass_what_may_be_fetched() -> None:
    # Given a context allowing every mode
    ctx = FetchContext(
        url_policy=UrlPolicy(),
        s3_buckets=frozenset({"files"}),
        s3_client=object(),
        endpoint_url="https://app.test/mail-proxy/attachments",
    )
    # Then nothing is found wrong before any I/O
    for path in ("base64:QUJD", "https://files.test/a", "s3://files/a", "doc-42"):
        assert precheck(Attachment(filename="a", storage_path=path), ctx) is None


@pytest.mark.parametrize(
    ("path", "fields", "detail"),
    [
        ("s3://other/a.pdf", {}, "S3 bucket 'other' is not allowed"),
        ("s3://files/", {}, "not an s3://bucket/key location"),
        ("s3://files/a.pdf", {"s3_client": None}, "S3 attachments are not configured"),
        ("doc-42", {"endpoint_url": None}, "no client_base_url"),
        ("http://169.254.169.254/latest/meta-data/", {}, "a cloud metadata address"),
        ("http://127.0.0.1/a.pdf", {}, "a loopback address"),
        ("http://10.0.0.7/a.pdf", {}, "a private or reserved address"),
    ],
)
def test_what_cannot_be_fetched_fails_before_any_io(
    path: str, fields: dict[str, Any], detail: str
) -> None:
    # Given a context, and an attachment it does not allow
    settings: dict[str, Any] = {
        "s3_buckets": frozenset({"files"}),
        "s3_client": FakeS3({}),
        "endpoint_url": "https://app.test/mail-proxy/attachments",
    } | fields
    ctx = FetchContext(url_policy=UrlPolicy(), **settings)
    attachment = Attachment(filename="a.pdf", storage_path=path)

    # When fetched / Then it fails, and the fake S3 was never asked
    error = failure(fetch_all, [attachment], ctx)
    assert detail in error.text
    assert precheck(attachment, ctx) is not None
    if isinstance(settings["s3_client"], FakeS3):
        assert settings["s3_client"].calls == []


def test_a_later_refused_attachment_stops_the_message_before_any_fetch() -> None:
    # Given a fetchable S3 attachment followed by one from a bucket not allowed
    s3 = FakeS3({"a": b"A"})
    attachments = [s3_attachment("a"), Attachment(filename="b", storage_path="s3://other/b")]

    # When fetched / Then the second is named and the first was not even fetched
    error = failure(fetch_all, attachments, s3_context(s3))
    assert error.text.startswith("Attachment fetch failed for b: ")
    assert s3.calls == []


def test_a_context_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="timeout"):
        FetchContext(url_policy=UrlPolicy(), timeout_seconds=0)
    with pytest.raises(ValueError, match="max_parallel"):
        FetchContext(url_policy=UrlPolicy(), max_parallel=0)
    with pytest.raises(ValueError, match="unknown fetch modes"):
        FetchContext(url_policy=UrlPolicy(), modes=frozenset({"ftp"}))
    assert INLINE_ONLY.modes == frozenset({"base64"})


# --- the pure helpers ---


def test_md5_is_checked_only_when_given() -> None:
    assert md5_problem(CONTENT, None) is None
    assert md5_problem(CONTENT, MD5) is None
    assert md5_problem(CONTENT, MD5.upper()) is None
    assert md5_problem(CONTENT, "f" * 32) == "content_md5 does not match the content"


def test_credentials_become_one_authorization_header() -> None:
    assert credential_headers("none", None, None) == {}
    assert credential_headers("bearer", None, "t0k") == {"Authorization": "Bearer t0k"}
    # Basic credentials are UTF-8 (RFC 7617)
    expected = base64.b64encode("anna:pässword".encode()).decode()
    assert credential_headers("basic", "anna", "pässword") == {"Authorization": f"Basic {expected}"}


@pytest.mark.parametrize(
    ("method", "user", "secret", "detail"),
    [
        ("bearer", None, None, "bearer auth needs a token"),
        ("basic", "anna", None, "basic auth needs a user and a password"),
        ("basic", None, "pw", "basic auth needs a user and a password"),
        ("basic", "an:na", "pw", "cannot contain ':'"),
        ("bearer", None, "t0k\r\nX-Injected: 1", "control character"),
        ("bearer", None, "tök€n", "characters a header cannot carry"),
        ("digest", None, "x", "unknown auth method"),
    ],
)
def test_incomplete_or_unsafe_credentials_are_refused_without_quoting_them(
    method: str, user: str | None, secret: str | None, detail: str
) -> None:
    with pytest.raises(ValueError, match=detail) as caught:
        credential_headers(method, user, secret)
    if secret:
        assert secret not in str(caught.value)


def test_an_attachment_with_bad_credentials_fails_permanently() -> None:
    # Given a URL attachment whose bearer auth has no token
    attachment = Attachment.model_validate(
        {"filename": "a.pdf", "storage_path": "https://files.test/a", "auth": {"method": "bearer"}}
    )
    ctx = FetchContext(url_policy=UrlPolicy())
    # When fetched / Then it fails before any request
    assert "bearer auth needs a token" in failure(fetch_one, attachment, ctx).text


def test_an_endpoint_answers_bytes_or_json_with_base64_content() -> None:
    assert endpoint_content(b"%PDF", "application/pdf") == b"%PDF"
    assert endpoint_content(b"%PDF", None) == b"%PDF"
    wrapped = b'{"content": "' + ENCODED.encode() + b'"}'
    assert endpoint_content(wrapped, "application/json; charset=utf-8") == CONTENT
    # JSON that is not that envelope is the file itself
    assert endpoint_content(b'{"rows": [1, 2]}', "application/json") == b'{"rows": [1, 2]}'
    assert endpoint_content(b"[1, 2", "application/json") == b"[1, 2"
    # The same envelope served as something else is the file itself
    assert endpoint_content(wrapped, "application/octet-stream") == wrapped
    with pytest.raises(ValueError, match="invalid base64"):
        endpoint_content(b'{"content": "%%%"}', "application/json")


def test_the_tenant_endpoint_is_its_base_url_and_attachment_path() -> None:
    def tenant(**fields: Any) -> Tenant:
        return Tenant(id="acme", created_at=0, updated_at=0, **fields)

    assert tenant_endpoint_url(tenant()) is None
    assert (
        tenant_endpoint_url(tenant(client_base_url="https://app.test/erp/"))
        == "https://app.test/erp/mail-proxy/attachments"
    )
    assert (
        tenant_endpoint_url(
            tenant(client_base_url="https://app.test", client_attachment_path="/files")
        )
        == "https://app.test/files"
    )


def test_the_tenant_secret_is_opened_with_the_tenant_context() -> None:
    # Given a tenant whose bearer token is sealed
    opened: list[tuple[str, dict[str, str]]] = []

    def open_secret(sealed: str, context: dict[str, str]) -> str:
        opened.append((sealed, context))
        return "plain-token"

    tenant = Tenant(
        id="acme",
        created_at=0,
        updated_at=0,
        client_auth=StoredClientAuth("bearer", None, "sealed=="),
    )
    # When its endpoint credentials are made / Then the secret is opened for that tenant
    auth = tenant_endpoint_auth(tenant, open_secret)
    assert auth == EndpointAuth("bearer", None, "plain-token")
    assert opened == [("sealed==", {"purpose": "client-auth", "tenant_id": "acme"})]
    assert "plain-token" not in repr(auth)
    # And a tenant without a secret opens nothing
    assert (
        tenant_endpoint_auth(Tenant(id="acme", created_at=0, updated_at=0), open_secret)
        == EndpointAuth()
    )
    assert len(opened) == 1


def test_only_endpoint_attachments_need_the_tenant_endpoint() -> None:
    assert not uses_endpoint([inline("a", b"A"), Attachment(filename="b", storage_path="s3://x/b")])
    assert uses_endpoint([inline("a", b"A"), Attachment(filename="b", storage_path="doc-42")])


# --- size cap ---


def test_contents_up_to_the_cap_are_accepted() -> None:
    ctx = FetchContext(url_policy=UrlPolicy(), modes=frozenset({"base64"}), max_total_bytes=10)
    fetched = fetch_all([inline("a", b"12345"), inline("b", b"67890")], ctx)
    assert [item.content for item in fetched] == [b"12345", b"67890"]


def test_the_cap_counts_all_the_attachments_of_a_message() -> None:
    # Given two attachments of 6 bytes each and a cap of 10 for the message
    ctx = FetchContext(url_policy=UrlPolicy(), modes=frozenset({"base64"}), max_total_bytes=10)

    # When fetched / Then the second goes over, and is named
    error = failure(fetch_all, [inline("a", b"123456"), inline("b", b"789012")], ctx)
    assert error.text == (
        "Attachment fetch failed for b: the attachments of a message may total at most 10 bytes"
    )


def test_the_cap_applies_to_s3_contents_too() -> None:
    s3 = FakeS3({"big": b"x" * 100})
    error = failure(fetch_all, [s3_attachment("big")], s3_context(s3, max_total_bytes=99))
    assert "may total at most 99 bytes" in error.text


# --- order, parallelism, stopping ---


def test_the_order_is_kept_whatever_finishes_first() -> None:
    # Given S3 objects where the first takes longest
    keys = ["k0", "k1", "k2", "k3", "k4"]
    s3 = FakeS3(
        {key: key.encode() for key in keys},
        delays={key: 0.05 * (len(keys) - i) for i, key in enumerate(keys)},
    )
    attachments = [s3_attachment(key) for key in keys[:2]]
    attachments.insert(1, inline("inline", b"in between"))
    attachments += [s3_attachment(key) for key in keys[2:]]

    # When fetched / Then the contents come back in the order given
    fetched = fetch_all(attachments, s3_context(s3))
    assert [item.filename for item in fetched] == [a.filename for a in attachments]
    assert [item.content for item in fetched] == [
        b"k0",
        b"in between",
        b"k1",
        b"k2",
        b"k3",
        b"k4",
    ]


def test_md5_is_checked_for_fetched_contents() -> None:
    s3 = FakeS3({"a": CONTENT})
    good = Attachment(filename="a.pdf", storage_path="s3://files/a", content_md5=MD5)
    bad = Attachment(filename="b.pdf", storage_path="s3://files/a", content_md5="0" * 32)
    assert fetch_one(good, s3_context(s3)).content == CONTENT
    assert "content_md5 does not match" in failure(fetch_one, bad, s3_context(s3)).text


def test_the_first_failure_stops_the_others() -> None:
    # Given one fetch at a time, and a first object that cannot be read
    s3 = FakeS3({"b": b"B", "c": b"C"}, failing={"a": OSError("disk on fire")})
    attachments = [s3_attachment(key) for key in "abc"]

    # When fetched / Then the first fails and the others never start
    error = failure(fetch_all, attachments, s3_context(s3, max_parallel=1))
    assert error.text.startswith("Attachment fetch failed for a.bin: ")
    time.sleep(0.1)
    assert s3.calls == ["a"]


def test_a_fetch_stuck_past_its_deadline_fails_in_time() -> None:
    # Given an S3 read that hangs (where no socket timeout of ours reaches)
    release = threading.Event()

    class HangingS3(FakeS3):
        def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
            release.wait(5)
            return super().get_object(Bucket=Bucket, Key=Key)

    ctx = s3_context(HangingS3({"a": b"A"}), timeout_seconds=0.2)

    # When fetched / Then the caller gets a permanent timeout soon after the deadline
    started = time.monotonic()
    try:
        error = failure(fetch_all, [s3_attachment("a")], ctx)
    finally:
        release.set()
    assert error.text == "Attachment fetch failed for a.bin: timed out after 0.2 s"
    assert time.monotonic() - started < 1.0


def test_an_s3_client_may_be_made_only_when_needed() -> None:
    # Given the S3 client as a function
    made: list[FakeS3] = []

    def make() -> FakeS3:
        made.append(FakeS3({"a": b"A"}))
        return made[-1]

    # When only inline attachments are fetched / Then no client is made
    fetch_all([inline("x", b"X")], s3_context(make))
    assert made == []
    # When an S3 one is / Then it is
    assert fetch_one(s3_attachment("a"), s3_context(make)).content == b"A"
    assert len(made) == 1
