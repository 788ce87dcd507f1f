"""SMTP and socket failures, translated into the domain's DeliveryError."""

from __future__ import annotations

import smtplib
import socket
import ssl

from mailproxy.domain.errors import DeliveryError
from mailproxy.domain.retry import is_temporary_reply


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _from_reply(what: str, code: int, reply: bytes | str) -> DeliveryError:
    detail = _text(reply)
    reason = f"{what}: {detail}" if detail else what
    return DeliveryError(reason, temporary=is_temporary_reply(code), smtp_code=code)


def translate(error: BaseException) -> DeliveryError:
    """The domain's view of a failure raised while talking to an SMTP server."""
    if isinstance(error, DeliveryError):
        return error
    if isinstance(error, smtplib.SMTPAuthenticationError):
        # Bad credentials do not get better by waiting, whatever code the server chose.
        return DeliveryError(
            f"Authentication failed: {_text(error.smtp_error)}",
            temporary=False,
            smtp_code=error.smtp_code,
        )
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        first_code, first_reply = next(iter(error.recipients.values()))
        refused = ", ".join(error.recipients)
        return DeliveryError(
            f"All recipients refused ({refused}): {_text(first_reply)}",
            temporary=all(is_temporary_reply(code) for code in codes),
            smtp_code=first_code,
        )
    if isinstance(error, smtplib.SMTPSenderRefused):
        return _from_reply("Sender refused", error.smtp_code, error.smtp_error)
    if isinstance(error, smtplib.SMTPDataError):
        return _from_reply("Message refused", error.smtp_code, error.smtp_error)
    if isinstance(error, smtplib.SMTPConnectError | smtplib.SMTPHeloError):
        return _from_reply("Server refused the connection", error.smtp_code, error.smtp_error)
    if isinstance(error, smtplib.SMTPResponseException):
        return _from_reply("SMTP error", error.smtp_code, error.smtp_error)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return DeliveryError(
            f"The server lacks what the account requires: {error}", temporary=False
        )
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"Connection lost: {error}", temporary=True)
    if isinstance(error, ssl.SSLCertVerificationError):
        return DeliveryError(
            f"TLS certificate not trusted: {error.verify_message}", temporary=False
        )
    if isinstance(error, TimeoutError | socket.timeout):
        return DeliveryError("Timed out talking to the SMTP server", temporary=True)
    if isinstance(error, ConnectionRefusedError):
        return DeliveryError("Connection refused", temporary=True)
    if isinstance(error, ConnectionResetError):
        return DeliveryError("Connection reset", temporary=True)
    if isinstance(error, socket.gaierror):
        return DeliveryError(f"Cannot resolve SMTP host: {error}", temporary=True)
    if isinstance(error, OSError):
        return DeliveryError(f"Network error: {error}", temporary=True)
    return DeliveryError(f"Unexpected SMTP failure: {error!r}", temporary=True)
