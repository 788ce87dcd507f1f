"""The RFC 5322 message and the SMTP envelope built for a submitted message (pure)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from mailproxy.delivery.mime import Envelope, FetchedAttachment, build_envelope
from mailproxy.domain.large_files import BodyNote
from mailproxy.domain.message import Message

NOW = 1_700_000_000.0
MD5 = "0123456789abcdef0123456789abcdef"


def msg(**overrides: Any) -> Message:
    return Message.model_validate(
        {
            "id": "m1",
            "from": "App <app@acme.test>",
            "to": ["a@example.test", "b@example.test"],
            "subject": "Your invoice",
            "body": "Hello there",
        }
        | overrides
    )


def parsed(envelope: Envelope) -> EmailMessage:
    result = email.message_from_bytes(envelope.data, policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    return result


def test_the_headers_a_recipient_sees() -> None:
    # Given a message with cc and reply_to / When built
    envelope = build_envelope(
        "acme", msg(cc="c@example.test", reply_to="support@acme.test"), [], NOW
    )
    mime = parsed(envelope)
    # Then each header says what the client asked for, plus the proxy's own
    assert mime["From"] == "App <app@acme.test>"
    assert mime["To"] == "a@example.test, b@example.test"
    assert mime["Cc"] == "c@example.test"
    assert mime["Reply-To"] == "support@acme.test"
    assert mime["Subject"] == "Your invoice"
    assert mime["X-Genro-Mail-ID"] == "m1"
    assert mime["Date"].datetime == datetime.fromtimestamp(NOW, tz=UTC)
    assert mime["Message-ID"].startswith("<")
    assert mime["Message-ID"].endswith("@acme.test>")
    assert mime.get_content_type() == "text/plain"
    assert mime.get_content_charset() == "utf-8"
    assert mime.get_content().rstrip() == "Hello there"


def test_bcc_is_in_the_envelope_but_never_in_a_header() -> None:
    # Given a bcc recipient / When built / Then it is an envelope recipient with no Bcc header
    envelope = build_envelope("acme", msg(cc="c@example.test", bcc="hidden@example.test"), [], NOW)
    assert envelope.recipients == [
        "a@example.test",
        "b@example.test",
        "c@example.test",
        "hidden@example.test",
    ]
    assert parsed(envelope)["Bcc"] is None
    assert b"hidden@example.test" not in envelope.data


def test_without_cc_or_reply_to_there_are_no_such_headers() -> None:
    mime = parsed(build_envelope("acme", msg(), [], NOW))
    assert mime["Cc"] is None
    assert mime["Reply-To"] is None


def test_mail_from_is_the_return_path_when_given() -> None:
    assert build_envelope("acme", msg(), [], NOW).mail_from == "App <app@acme.test>"
    with_return_path = msg(return_path="bounces@acme.test")
    envelope = build_envelope("acme", with_return_path, [], NOW)
    assert envelope.mail_from == "bounces@acme.test"
    # The From header stays the sender's
    assert parsed(envelope)["From"] == "App <app@acme.test>"


def test_html_content() -> None:
    mime = parsed(build_envelope("acme", msg(content_type="html", body="<p>Hi</p>"), [], NOW))
    assert mime.get_content_type() == "text/html"
    assert "<p>Hi</p>" in mime.get_content()


def test_unicode_subject_and_body_survive() -> None:
    mime = parsed(build_envelope("acme", msg(subject="Fattura n° 5 — €", body="Grazie è"), [], NOW))
    assert mime["Subject"] == "Fattura n° 5 — €"
    assert mime.get_content().rstrip() == "Grazie è"


def test_custom_headers_are_added() -> None:
    mime = parsed(
        build_envelope(
            "acme", msg(headers={"X-Campaign": "spring", "List-Unsubscribe": "<u>"}), [], NOW
        )
    )
    assert mime["X-Campaign"] == "spring"
    assert mime["List-Unsubscribe"] == "<u>"


@pytest.mark.parametrize(
    "name",
    ["From", "to", "Subject", "Message-ID", "X-Genro-Mail-ID", "Date", "Bcc", "CC"],
)
def test_reserved_headers_cannot_be_overridden(name: str) -> None:
    # Given a client header that would replace one the proxy writes (validation refuses it at
    # the API; a payload stored before that rule skips validation here) / When built
    spoofing = msg().model_copy(update={"headers": {name: "spoofed@evil.test"}})
    envelope = build_envelope("acme", spoofing, [], NOW)
    mime = parsed(envelope)
    # Then it is dropped: the proxy's value stays, once
    assert b"spoofed@evil.test" not in envelope.data
    assert len(mime.get_all(name) or []) <= 1


def test_a_reply_to_header_given_with_a_reply_to_field_is_not_written_twice() -> None:
    # Given a stored payload (validation skipped) holding both / When built
    both = msg(reply_to="field@acme.test").model_copy(
        update={"headers": {"Reply-To": "header@acme.test"}}
    )
    mime = parsed(build_envelope("acme", both, [], NOW))
    # Then the field's value is the one Reply-To
    assert mime.get_all("Reply-To") == ["field@acme.test"]


def test_the_message_id_is_stable_across_attempts() -> None:
    # Given the same message built twice, an hour apart (a retry) / Then the same Message-ID
    first = parsed(build_envelope("acme", msg(), [], NOW))["Message-ID"]
    retry = parsed(build_envelope("acme", msg(), [], NOW + 3600))["Message-ID"]
    assert first == retry
    # and another id, or the same id of another tenant, gets another one
    assert parsed(build_envelope("acme", msg(id="m2"), [], NOW))["Message-ID"] != first
    assert parsed(build_envelope("other", msg(), [], NOW))["Message-ID"] != first


@pytest.mark.parametrize(
    ("given", "expected"), [("abc@acme.test", "<abc@acme.test>"), ("<x@y>", "<x@y>")]
)
def test_the_clients_message_id_is_used(given: str, expected: str) -> None:
    mime = parsed(build_envelope("acme", msg(message_id=given), [], NOW))
    assert mime["Message-ID"] == expected


def test_attachments_keep_their_content_under_the_delivered_name() -> None:
    # Given a PDF with an MD5 cache marker in its name and a file of unknown type
    attachments = [
        FetchedAttachment(f"report_{{MD5:{MD5}}}.pdf", b"%PDF-1.4 fake"),
        FetchedAttachment("data.bin-x", b"\x00\x01\x02"),
        FetchedAttachment("notes", b"plain notes", "text/plain"),
    ]
    mime = parsed(build_envelope("acme", msg(), attachments, NOW))
    # Then the body stays first and each file follows, named as the client would see it
    assert mime.get_content_type() == "multipart/mixed"
    parts = list(mime.iter_attachments())
    assert [p.get_filename() for p in parts] == ["report.pdf", "data.bin-x", "notes"]
    assert [p.get_content_type() for p in parts] == [
        "application/pdf",
        "application/octet-stream",
        "text/plain",
    ]
    assert [p.get_payload(decode=True) for p in parts] == [
        b"%PDF-1.4 fake",
        b"\x00\x01\x02",
        b"plain notes",
    ]
    body = mime.get_body(("plain",))
    assert body is not None
    assert body.get_content().rstrip() == "Hello there"


LINKS_NOTE = BodyNote(
    text="\n\n--\n- big.iso (2.0 MB): https://api.example/files/T\n",
    html='<hr><ul><li><a href="https://api.example/files/T">big.iso</a></li></ul>',
)


def test_a_plain_body_ends_with_the_note_of_the_files_taken_out() -> None:
    # Given a plain message whose large file was taken out, one small file kept / When built
    kept = [FetchedAttachment("small.txt", b"tiny", "text/plain")]
    mime = parsed(build_envelope("acme", msg(), kept, NOW, LINKS_NOTE))
    # Then the body is the client's text, then the note; the kept file is still attached
    body = mime.get_body(("plain",))
    assert body is not None
    # (the SMTP policy ends lines with CRLF)
    assert body.get_content().replace("\r\n", "\n").rstrip() == (
        "Hello there\n\n--\n- big.iso (2.0 MB): https://api.example/files/T"
    )
    assert [p.get_filename() for p in mime.iter_attachments()] == ["small.txt"]


def test_an_html_body_gets_the_html_note_inside_its_document() -> None:
    html_msg = msg(content_type="html", body="<html><body><p>Hi</p></body></html>")
    mime = parsed(build_envelope("acme", html_msg, [], NOW, LINKS_NOTE))
    assert mime.get_content_type() == "text/html"
    assert mime.get_content().rstrip() == (
        '<html><body><p>Hi</p><hr><ul><li><a href="https://api.example/files/T">big.iso</a>'
        "</li></ul></body></html>"
    )
