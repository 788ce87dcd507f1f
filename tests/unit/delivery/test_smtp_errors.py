"""SMTP and socket failures, as the domain sees them: temporary or permanent, and a text."""

from __future__ import annotations

import smtplib
import socket
import ssl

import pytest

from mailproxy.delivery.smtp_errors import translate
from mailproxy.domain.errors import DeliveryError


def _untrusted_certificate() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    return error


CASES: list[tuple[str, BaseException, bool, int | None, str]] = [
    (
        "auth 535",
        smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"),
        False,
        535,
        "Authentication failed: 5.7.8 Bad credentials",
    ),
    (
        "auth with a 4xx code",
        smtplib.SMTPAuthenticationError(454, b"Temporary auth failure"),
        False,
        454,
        "Authentication failed: Temporary auth failure",
    ),
    (
        "all recipients 550",
        smtplib.SMTPRecipientsRefused({"a@x.test": (550, b"No such user")}),
        False,
        550,
        "All recipients refused (a@x.test): No such user",
    ),
    (
        "all recipients 4xx",
        smtplib.SMTPRecipientsRefused({"a@x.test": (450, b"Busy"), "b@x.test": (451, b"Later")}),
        True,
        450,
        "All recipients refused (a@x.test, b@x.test): Busy",
    ),
    (
        "recipients 4xx and 5xx",
        smtplib.SMTPRecipientsRefused({"a@x.test": (450, b"Busy"), "b@x.test": (550, b"Unknown")}),
        False,
        450,
        "All recipients refused (a@x.test, b@x.test): Busy",
    ),
    (
        "sender 451",
        smtplib.SMTPSenderRefused(451, b"Try later", "app@acme.test"),
        True,
        451,
        "Sender refused: Try later",
    ),
    (
        "sender 553",
        smtplib.SMTPSenderRefused(553, b"Not yours", "app@acme.test"),
        False,
        553,
        "Sender refused: Not yours",
    ),
    (
        "data 554",
        smtplib.SMTPDataError(554, b"5.7.1 Spam"),
        False,
        554,
        "Message refused: 5.7.1 Spam",
    ),
    (
        "data 452",
        smtplib.SMTPDataError(452, b"Mailbox full"),
        True,
        452,
        "Message refused: Mailbox full",
    ),
    (
        "connect 421",
        smtplib.SMTPConnectError(421, b"Too busy"),
        True,
        421,
        "Server refused the connection: Too busy",
    ),
    (
        "helo 501",
        smtplib.SMTPHeloError(501, b"Bad HELO"),
        False,
        501,
        "Server refused the connection: Bad HELO",
    ),
    (
        "other reply",
        smtplib.SMTPResponseException(421, b"Closing"),
        True,
        421,
        "SMTP error: Closing",
    ),
    (
        "multi-line reply",
        smtplib.SMTPDataError(550, b"5.7.1 line one\n5.7.1  line two"),
        False,
        550,
        "Message refused: 5.7.1 line one 5.7.1 line two",
    ),
    ("empty reply", smtplib.SMTPDataError(550, b""), False, 550, "Message refused"),
    (
        "no STARTTLS",
        smtplib.SMTPNotSupportedError("STARTTLS extension not supported"),
        False,
        None,
        "The server lacks what the account requires: STARTTLS extension not supported",
    ),
    (
        "disconnected",
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        True,
        None,
        "Connection lost: Connection unexpectedly closed",
    ),
    (
        "untrusted certificate",
        _untrusted_certificate(),
        False,
        None,
        "TLS certificate not trusted: self-signed certificate",
    ),
    ("timeout", TimeoutError("timed out"), True, None, "Timed out talking to the SMTP server"),
    (
        "refused",
        ConnectionRefusedError(111, "Connection refused"),
        True,
        None,
        "Connection refused",
    ),
    (
        "reset",
        ConnectionResetError(104, "Connection reset by peer"),
        True,
        None,
        "Connection reset",
    ),
    (
        "no such host",
        socket.gaierror(-2, "Name or service not known"),
        True,
        None,
        "Cannot resolve SMTP host: [Errno -2] Name or service not known",
    ),
    (
        "network",
        OSError(101, "Network is unreachable"),
        True,
        None,
        "Network error: [Errno 101] Network is unreachable",
    ),
    (
        "anything else",
        ValueError("boom"),
        True,
        None,
        "Unexpected SMTP failure: ValueError('boom')",
    ),
]


@pytest.mark.parametrize(
    ("error", "temporary", "code", "text"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_translate(error: BaseException, temporary: bool, code: int | None, text: str) -> None:
    # Given a failure raised while talking to a server / When translated
    translated = translate(error)
    # Then retry or not, and the text a client reads (with the code when there is one)
    assert translated.temporary is temporary
    assert translated.smtp_code == code
    assert translated.reason == text
    assert translated.text == (text if code is None else f"{text} (SMTP {code})")


def test_a_delivery_error_passes_through_unchanged() -> None:
    error = DeliveryError("Attachment fetch failed for a.pdf: 404", temporary=False)
    assert translate(error) is error
