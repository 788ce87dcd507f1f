"""SMTP and socket failures, translated into the domain's DeliveryError."""

from __future__ import annotations

import smtplib
import socket
import ssl

from mailproxy.domain.errors import DeliveryError
from mailproxy.domain.retry import IS_TEMPORARY, FailureKind, reply_kind


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _from_reply(what: str, code: int, reply: bytes | str) -> DeliveryError:
    detail = _text(reply)
    reason = f"{what}: {detail}" if detail else what
    return _failure(reply_kind(code), reason, code)


def _failure(kind: FailureKind, reason: str, code: int | None = None) -> DeliveryError:
    return DeliveryError(reason, temporary=IS_TEMPORARY[kind], smtp_code=code)


# Failures without a reply code, most specific type first: (type, kind, what it means).
_WITHOUT_REPLY: tuple[tuple[type[BaseException], FailureKind, str], ...] = (
    (
        smtplib.SMTPNotSupportedError,
        FailureKind.MISSING_EXTENSION,
        "The server lacks what the account requires",
    ),
    (smtplib.SMTPServerDisconnected, FailureKind.DISCONNECTED, "Connection lost"),
    (
        ssl.SSLCertVerificationError,
        FailureKind.UNTRUSTED_CERTIFICATE,
        "TLS certificate not trusted",
    ),
    (TimeoutError, FailureKind.TIMEOUT, "Timed out talking to the SMTP server"),
    (ConnectionRefusedError, FailureKind.REFUSED, "Connection refused"),
    (ConnectionResetError, FailureKind.RESET, "Connection reset"),
    (socket.gaierror, FailureKind.NAME_RESOLUTION, "Cannot resolve SMTP host"),
    (OSError, FailureKind.NETWORK, "Network error"),
)

# Failures that carry the server's reply: what was refused, by type.
_WITH_REPLY: tuple[tuple[type[smtplib.SMTPResponseException], str], ...] = (
    (smtplib.SMTPSenderRefused, "Sender refused"),
    (smtplib.SMTPDataError, "Message refused"),
    (smtplib.SMTPConnectError, "Server refused the connection"),
    (smtplib.SMTPHeloError, "Server refused the connection"),
    (smtplib.SMTPResponseException, "SMTP error"),
)


def translate(error: BaseException) -> DeliveryError:
    """The domain's view of a failure raised while talking to an SMTP server."""
    if isinstance(error, DeliveryError):
        return error
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return _failure(
            FailureKind.AUTHENTICATION,
            f"Authentication failed: {_text(error.smtp_error)}",
            error.smtp_code,
        )
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        first_code, first_reply = next(iter(error.recipients.values()))
        refused = ", ".join(error.recipients)
        kinds = {reply_kind(code) for code in codes}
        kind = (
            FailureKind.TRANSIENT_REPLY
            if kinds == {FailureKind.TRANSIENT_REPLY}
            else FailureKind.PERMANENT_REPLY
        )
        return _failure(
            kind, f"All recipients refused ({refused}): {_text(first_reply)}", first_code
        )
    for reply_type, what in _WITH_REPLY:
        if isinstance(error, reply_type):
            return _from_reply(what, error.smtp_code, error.smtp_error)
    for plain_type, kind, meaning in _WITHOUT_REPLY:
        if isinstance(error, plain_type):
            detail = (
                error.verify_message
                if isinstance(error, ssl.SSLCertVerificationError)
                else str(error)
            )
            if kind in (FailureKind.TIMEOUT, FailureKind.REFUSED, FailureKind.RESET):
                return _failure(kind, meaning)
            return _failure(kind, f"{meaning}: {detail}" if detail else meaning)
    return _failure(FailureKind.UNKNOWN, f"Unexpected SMTP failure: {error!r}")
