"""Attachment contents: inline base64 today; a failure is permanent for the message."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mailproxy.delivery.attachments import fetch_all, fetch_one
from mailproxy.delivery.mime import FetchedAttachment
from mailproxy.domain.errors import DeliveryError
from mailproxy.domain.message import Attachment

CONTENT = b"%PDF-1.4 invoice"
ENCODED = base64.b64encode(CONTENT).decode()
MD5 = hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()


def test_inline_base64_is_decoded() -> None:
    attachment = Attachment(
        filename="invoice.pdf", storage_path=f"base64:{ENCODED}", mime_type="application/pdf"
    )
    assert fetch_one(attachment) == FetchedAttachment("invoice.pdf", CONTENT, "application/pdf")


def test_explicit_base64_mode_without_prefix() -> None:
    attachment = Attachment(filename="a.pdf", storage_path=ENCODED, fetch_mode="base64")
    assert fetch_all([attachment]) == [FetchedAttachment("a.pdf", CONTENT, None)]


def test_a_matching_md5_is_accepted_in_any_case() -> None:
    attachment = Attachment(
        filename="a.pdf", storage_path=f"base64:{ENCODED}", content_md5=MD5.upper()
    )
    assert fetch_one(attachment).content == CONTENT


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
            "fetch mode 'http_url' is not supported yet",
        ),
    ],
    ids=["bad base64", "md5 mismatch", "not yet supported"],
)
def test_a_fetch_failure_is_permanent_and_names_the_file(
    attachment: Attachment, detail: str
) -> None:
    # Given an attachment that cannot be fetched / Then the message fails, no retry
    with pytest.raises(DeliveryError) as caught:
        fetch_one(attachment)
    assert not caught.value.temporary
    assert caught.value.text.startswith("Attachment fetch failed for a.pdf: ")
    assert detail in caught.value.text
