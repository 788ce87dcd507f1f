"""Fetching attachment contents; a failure is a permanent error for the message."""

from __future__ import annotations

import base64
import binascii
import hashlib

from mailproxy.delivery.mime import FetchedAttachment
from mailproxy.domain.errors import DeliveryError
from mailproxy.domain.message import Attachment


def fetch_failure(attachment: Attachment, detail: str) -> DeliveryError:
    return DeliveryError(
        f"Attachment fetch failed for {attachment.filename}: {detail}", temporary=False
    )


def fetch_all(attachments: list[Attachment]) -> list[FetchedAttachment]:
    return [fetch_one(attachment) for attachment in attachments]


def fetch_one(attachment: Attachment) -> FetchedAttachment:
    mode = attachment.resolved_fetch_mode
    if mode != "base64":
        # URL, S3 and endpoint fetching arrive with the delivery engine (issue 4).
        raise fetch_failure(attachment, f"fetch mode {mode!r} is not supported yet")
    encoded = attachment.storage_path.removeprefix("base64:")
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise fetch_failure(attachment, f"invalid base64 ({error})") from error
    if attachment.content_md5 and (
        hashlib.md5(content, usedforsecurity=False).hexdigest() != attachment.content_md5.lower()
    ):
        raise fetch_failure(attachment, "content_md5 does not match the content")
    return FetchedAttachment(attachment.filename, content, attachment.mime_type)
