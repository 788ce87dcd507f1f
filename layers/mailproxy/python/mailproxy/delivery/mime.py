"""The RFC 5322 message and SMTP envelope for a submitted message."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from mailproxy.domain.large_files import BodyNote, with_note
from mailproxy.domain.message import RESERVED_HEADER_NAMES, Message, delivered_filename

MAIL_ID_HEADER = "X-Genro-Mail-ID"


@dataclass(frozen=True)
class FetchedAttachment:
    filename: str
    content: bytes
    mime_type: str | None = None


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    recipients: list[str]
    data: bytes


def stable_message_id(tenant_id: str, message: Message) -> str:
    """The client's Message-ID, or one derived from (tenant, id): the same for every attempt,
    so a receiver can drop a copy that a retry after an uncertain delivery produced."""
    if message.message_id:
        text = message.message_id.strip()
        return text if text.startswith("<") else f"<{text}>"
    digest = message_id_digest(tenant_id, message.id)
    domain = message.from_addr.rpartition("@")[2].strip(" >") or "mailproxy.invalid"
    return f"<{digest}@{domain}>"


def message_id_digest(tenant_id: str, mail_id: str) -> str:
    """The left part of the default Message-ID: one-way, so the bounce reader can only check
    a candidate (tenant, id) against it, never find the message from it."""
    return hashlib.sha256(f"{tenant_id}\0{mail_id}".encode()).hexdigest()[:32]


def build_envelope(
    tenant_id: str,
    message: Message,
    attachments: list[FetchedAttachment],
    now: float,
    note: BodyNote | None = None,
    default_return_path: str | None = None,
) -> Envelope:
    """`note`: what the body gains at its end (the download links of attachments taken out).
    The envelope sender (MAIL FROM): the message's return_path (the client's choice wins),
    else `default_return_path` (the instance's bounce_return_path), else its From."""
    mime = EmailMessage(policy=SMTP)
    mime["From"] = message.from_addr
    mime["To"] = ", ".join(message.to)
    if message.cc:
        mime["Cc"] = ", ".join(message.cc)
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(now, usegmt=True)
    mime["Message-ID"] = stable_message_id(tenant_id, message)
    mime[MAIL_ID_HEADER] = message.id
    for name, value in (message.headers or {}).items():
        # Validation refuses these at the API; a payload stored before a rule changed may
        # still carry one, and the proxy's own header wins.
        if name.lower() in RESERVED_HEADER_NAMES:
            continue
        if name.lower() == "reply-to" and message.reply_to:
            continue  # validation makes it reply_to; the field wins, as there
        mime[name] = value
    subtype = "html" if message.content_type == "html" else "plain"
    body = with_note(message.body, message.content_type, note) if note else message.body
    mime.set_content(body, subtype=subtype, charset="utf-8")
    for attachment in attachments:
        maintype, _, subtype = mime_type_of(attachment).partition("/")
        mime.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=delivered_filename(attachment.filename),
        )
    # Bcc recipients are in the envelope only: no Bcc header ever reaches a server.
    return Envelope(
        mail_from=message.return_path or default_return_path or message.from_addr,
        recipients=message.recipients,
        data=mime.as_bytes(),
    )


def mime_type_of(attachment: FetchedAttachment) -> str:
    """The attachment's own type when it names one, else the one its filename suggests."""
    if attachment.mime_type and "/" in attachment.mime_type:
        return attachment.mime_type
    guessed, _ = mimetypes.guess_type(delivered_filename(attachment.filename))
    return guessed or "application/octet-stream"
