"""Bounces, the decisions: whether a mail in the bounce mailbox is a delivery failure, for whom,
hard or soft, with what code and reason, and what it names of the message that failed.

RFC 3464 notifications (multipart/report; report-type=delivery-status) are read with the
standard library: they carry a status code and a diagnostic per recipient. The other forms
(Exim's X-Failed-Recipients, qmail's QSBMF, and the other MTAs flufl.bounce knows) are
recognized by flufl.bounce, which names the failed recipients and whether the failure is
permanent; their code and reason come from the recipient's paragraph of the text.

The match keys come from the returned message: a message/rfc822 or text/rfc822-headers part,
or, in the non-standard forms, the copy of the message pasted into the text.

SPEC.md, "Bounces (compatible)": 5.x.x is hard, 4.x.x soft.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.utils
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum

from flufl.bounce import all_failures

from mailproxy.domain.record import MessageEvent, event_id_for
from mailproxy.domain.status import EventType

MAIL_ID_HEADER = "X-Genro-Mail-ID"
# Reasons are kept whole up to this length: enough for any MTA's diagnostic, bounded for the
# event item and the report.
MAX_REASON_CHARS = 500

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC_CODE = re.compile(r"\b([45])\d\d\b")
_HEADER_LINE = {
    "mail_id": re.compile(r"^X-Genro-Mail-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE),
    "message_id": re.compile(r"^Message-ID:[ \t]*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE),
}
# Where the non-standard forms start their copy of the message (Exim, qmail, sendmail and the
# like): the failure text is above it, the returned headers below.
_COPY_MARKERS = re.compile(
    r"^[-\s]*(This is a copy of the message|Below this line is a copy of the message|"
    r"The original message|Original message|Unsent message below|Undelivered message)",
    re.IGNORECASE | re.MULTILINE,
)


class BounceType(StrEnum):
    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient the notification says failed, as the proxy sent to it."""

    recipient: str
    bounce_type: BounceType
    code: str  # an enhanced status code, "5.1.1"
    reason: str


@dataclass(frozen=True)
class Bounce:
    """A delivery failure notification: its failures, and the keys that find the message."""

    failures: tuple[FailedRecipient, ...]
    # The returned message's X-Genro-Mail-ID (the message's id, unique within its tenant).
    mail_id: str | None
    # The returned message's Message-ID, angle brackets kept.
    message_id: str | None
    # The returned message's To and Cc: its recipients when the failures name other
    # addresses (a forward); lower-cased.
    returned_recipients: tuple[str, ...]
    # When the notification was made (its Date), if it says so readably.
    notified_at: float | None
    # "rfc3464", or the flufl.bounce detector's form ("non-standard").
    form: str

    @property
    def first(self) -> FailedRecipient:
        """The failure that stands for the whole notification: a hard one if there is one."""
        hard = (f for f in self.failures if f.bounce_type is BounceType.HARD)
        return next(hard, self.failures[0])

    @property
    def bounce_type(self) -> BounceType:
        return self.first.bounce_type

    @property
    def code(self) -> str:
        return self.first.code

    @property
    def reason(self) -> str:
        return self.first.reason

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(f.recipient for f in self.failures)


@dataclass(frozen=True)
class MailboxCursor:
    """Where the last run of the bounce reader stopped in its folder: the folder's
    UIDVALIDITY and the last UID it handled. UIDs only grow while UIDVALIDITY stays; a new
    UIDVALIDITY voids the UIDs, and the reader then reads whatever is still in the folder."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class MailboxMessage:
    """One mail of the bounce mailbox as read: its UID in the folder, and its bytes."""

    uid: int
    raw: bytes


@dataclass(frozen=True)
class NotABounce:
    """Mail in the bounce mailbox that reports no failure (an auto-reply, a success DSN, a
    person's answer): left where it is, counted apart."""

    why: str


def parse_notification(raw: bytes) -> Bounce | NotABounce:
    """Reads one mail of the bounce mailbox (its bytes as the IMAP server returns them)."""
    msg = email.message_from_bytes(raw)
    reports = [part for part in msg.walk() if part.get_content_type() == "message/delivery-status"]
    if reports:
        failures = _rfc3464_failures(reports)
        if not failures:
            return NotABounce("a delivery status notification without a failure")
        form = "rfc3464"
    else:
        failures = _other_failures(msg)
        if not failures:
            return NotABounce("not a delivery failure notification")
        form = "non-standard"
    mail_id, message_id, returned = _returned_keys(msg)
    return Bounce(
        failures=tuple(failures),
        mail_id=mail_id,
        message_id=message_id,
        returned_recipients=returned,
        notified_at=_date_of(msg),
        form=form,
    )


@dataclass(frozen=True)
class SentMessage:
    """A message the proxy sent, as the bounce reader finds it: enough to check a match."""

    tenant_id: str
    id: str  # the client's id, the X-Genro-Mail-ID header (unique within the tenant)
    # The Message-ID header it was sent with (delivery/mime.py's stable_message_id).
    message_id_header: str | None = None
    # Its To, Cc and Bcc, lower-cased; empty when unknown.
    recipients: tuple[str, ...] = ()
    sent_ts: float | None = None


def consistent(candidate: SentMessage, bounce: Bounce) -> bool:
    """Whether the notification can be about this message. An X-Genro-Mail-ID is unique only
    within a tenant (clients choose ids like "42"), so a candidate found by it is checked
    against what else the notification says: its Message-ID when both are known, else its
    recipients (failed, or in the returned headers) when both are known."""
    if bounce.message_id and candidate.message_id_header:
        return candidate.message_id_header == bounce.message_id
    addresses = set(bounce.recipients) | set(bounce.returned_recipients)
    if addresses and candidate.recipients:
        return bool(addresses & {r.lower() for r in candidate.recipients})
    return True


def latest_for_recipient(candidates: Sequence[SentMessage], before: float) -> SentMessage | None:
    """The last resort, when the notification names no message: among the recent messages
    sent to a failed recipient, the latest sent before the notification. None when they
    belong to more than one tenant (one tenant must never receive another's bounce) or when
    two were sent at that same latest moment."""
    sent = [c for c in candidates if c.sent_ts is not None and c.sent_ts <= before]
    if not sent or len({c.tenant_id for c in sent}) > 1:
        return None
    latest = max(c.sent_ts or 0.0 for c in sent)
    found = {(c.tenant_id, c.id): c for c in sent if c.sent_ts == latest}
    return next(iter(found.values())) if len(found) == 1 else None


def bounce_key(recipient: str, code: str) -> str:
    """The same for the same failure of the same recipient: a notification delivered twice, or
    a second one for the same failure, records one event."""
    return hashlib.sha256(f"{recipient.lower()}\0{code}".encode()).hexdigest()[:16]


def bounce_event(message_id: str, failure: FailedRecipient, at: float) -> MessageEvent:
    """The `bounce` event of one failed recipient (SPEC.md: bounce_type, bounce_code,
    bounce_reason), at `at` (bounce_ts_of)."""
    return MessageEvent(
        event_id=event_id_for(
            at,
            message_id,
            f"bounce-{bounce_key(failure.recipient, failure.code)}",
            EventType.BOUNCE,
        ),
        message_id=message_id,
        event_type=EventType.BOUNCE,
        event_ts=at,
        description=failure.reason,
        metadata={
            "bounce_type": failure.bounce_type.value,
            "bounce_code": failure.code,
            "bounce_reason": failure.reason,
            "bounce_recipient": failure.recipient,
        },
    )


def bounce_ts_of(bounce: Bounce, now: float) -> float:
    """When the bounce happened: the notification's Date, unless it has none or one in the
    future (a wrong clock at the remote MTA), then now."""
    at = bounce.notified_at
    return at if at is not None and 0 < at <= now else now


def bounce_type_of(code: str) -> BounceType:
    """5.x.x is hard, anything else (4.x.x) soft: a soft bounce may yet be delivered."""
    return BounceType.HARD if code.startswith("5") else BounceType.SOFT


def _rfc3464_failures(reports: list[email.message.Message]) -> list[FailedRecipient]:
    failures: list[FailedRecipient] = []
    for report in reports:
        blocks = report.get_payload()
        if not isinstance(blocks, list):
            continue
        # The first block is about the message (Reporting-MTA, Arrival-Date); each further
        # one about a recipient.
        for block in blocks[1:]:
            if not isinstance(block, email.message.Message):
                continue
            failure = _recipient_failure(block)
            if failure is not None:
                failures.append(failure)
    return failures


def _recipient_failure(block: email.message.Message) -> FailedRecipient | None:
    action = _unfold(block.get("Action", "")).lower()
    status = _STATUS.search(_unfold(block.get("Status", "")))
    # "delivered", "relayed" and "expanded" are successes; opensmtpd writes "error".
    if action.startswith(("failed", "error")):
        default = "5.0.0"
    elif action.startswith("delayed"):
        default = "4.0.0"
    else:
        return None
    recipient = _address(block.get("Original-Recipient")) or _address(block.get("Final-Recipient"))
    if not recipient:
        return None
    code = status.group(0) if status else default
    if code.startswith("2"):
        return None
    diagnostic = _unfold(block.get("Diagnostic-Code", ""))
    _, semicolon, text = diagnostic.partition(";")
    reason = (text if semicolon else diagnostic).strip() or _status_text(code)
    return FailedRecipient(recipient, bounce_type_of(code), code, _bounded(reason))


def _other_failures(msg: email.message.Message) -> list[FailedRecipient]:
    try:
        temporary, permanent = all_failures(msg)
    except Exception:
        # A detector tripped on a malformed mail (one without a From, say): no failure is
        # read from it, and the caller keeps it as mail it could not match.
        return []
    text = _failure_text(msg)
    failures = []
    for addresses, bounce_type in ((permanent, BounceType.HARD), (temporary, BounceType.SOFT)):
        for raw_address in sorted(addresses):
            recipient = raw_address.decode("ascii", "replace").strip().lower()
            if not recipient:
                continue
            paragraph = _paragraph_about(text, recipient)
            code = _code_in(paragraph, bounce_type)
            # The detector's verdict (permanent or not) is kept when the text names no
            # class; a code in the text wins, as RFC 3464's Status does.
            failures.append(
                FailedRecipient(
                    recipient,
                    bounce_type_of(code),
                    code,
                    _bounded(paragraph or _status_text(code)),
                )
            )
    return failures


def _failure_text(msg: email.message.Message) -> str:
    """The notification's own words: its text parts, up to the copy of the message."""
    text = "\n".join(_text_parts(msg))
    marker = _COPY_MARKERS.search(text)
    return text[: marker.start()] if marker else text


def _text_parts(msg: email.message.Message) -> Iterator[str]:
    for part in msg.walk():
        if part.get_content_maintype() != "text" or part.get_content_type() == (
            "text/rfc822-headers"
        ):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            yield payload.decode(part.get_content_charset() or "utf-8", "replace")


def _paragraph_about(text: str, recipient: str) -> str:
    """The paragraph that names the recipient and says something more than its address."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text) if recipient in p.lower()]
    for paragraph in paragraphs:
        words = _unfold(paragraph)
        if words.strip("<>: ").lower() != recipient:
            return words
    return _unfold(paragraphs[0]) if paragraphs else ""


def _code_in(text: str, bounce_type: BounceType) -> str:
    status = _STATUS.search(text)
    if status and not status.group(0).startswith("2"):
        return status.group(0)
    basic = _BASIC_CODE.search(text)
    if basic:
        return f"{basic.group(1)}.0.0"
    return "5.0.0" if bounce_type is BounceType.HARD else "4.0.0"


def _returned_keys(msg: email.message.Message) -> tuple[str | None, str | None, tuple[str, ...]]:
    for part in msg.walk():
        kind = part.get_content_type()
        headers: email.message.Message | None = None
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                headers = inner[0]
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                headers = email.parser.BytesHeaderParser().parsebytes(payload)
        if headers is not None and (headers.get(MAIL_ID_HEADER) or headers.get("Message-ID")):
            return (
                _unfold(headers.get(MAIL_ID_HEADER, "")).strip() or None,
                _message_id(headers.get("Message-ID")),
                _recipients_of(headers),
            )
    # A non-standard form pastes the message into its text, below a marker.
    text = "\n".join(_text_parts(msg))
    marker = _COPY_MARKERS.search(text)
    if not marker:
        return None, None, ()
    # Below the marker's line: the returned headers, up to the first empty line.
    copy = text[marker.end() :].partition("\n")[2].lstrip("\r\n")
    head = re.split(r"\r?\n[ \t]*\r?\n", copy, maxsplit=1)[0]
    mail_id = _HEADER_LINE["mail_id"].search(head)
    message_id = _HEADER_LINE["message_id"].search(head)
    returned = _recipients_of(email.parser.HeaderParser().parsestr(head))
    return (
        mail_id.group(1) if mail_id else None,
        message_id.group(1) if message_id else None,
        returned,
    )


def _recipients_of(headers: email.message.Message) -> tuple[str, ...]:
    fields = [str(v) for name in ("To", "Cc") for v in headers.get_all(name, [])]
    return tuple(dict.fromkeys(a.lower() for _, a in email.utils.getaddresses(fields) if "@" in a))


def _message_id(value: object) -> str | None:
    found = re.search(r"<[^>\s]+>", _unfold(str(value))) if value else None
    return found.group(0) if found else None


def _address(value: object) -> str | None:
    """An RFC 3464 address field ("rfc822; user@host") as the bare address."""
    if not value:
        return None
    text = _unfold(str(value))
    kind, semicolon, address = text.partition(";")
    if not semicolon:
        address = kind
    address = address.strip().strip("<>").strip()
    return address.lower() if "@" in address else None


def _date_of(msg: email.message.Message) -> float | None:
    value = msg.get("Date")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # "-0000" (zone unknown) parses naive: read it as UTC, never as this machine's zone.
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _status_text(code: str) -> str:
    return f"delivery failed ({code})"


def _unfold(value: object) -> str:
    return " ".join(str(value).split())


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"
