"""Reading one mail of the bounce mailbox: RFC 3464 notifications, the non-standard forms of
common MTAs, and mail that reports no failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailproxy.domain.bounces import (
    MAX_REASON_CHARS,
    Bounce,
    BounceType,
    FailedRecipient,
    NotABounce,
    SentMessage,
    bounce_event,
    bounce_key,
    bounce_ts_of,
    bounce_type_of,
    consistent,
    latest_for_recipient,
    parse_notification,
)
from mailproxy.domain.reporting import is_final, report_entry

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bounces"


def _parse(name: str) -> Bounce | NotABounce:
    return parse_notification((FIXTURES / name).read_bytes())


def _bounce(name: str) -> Bounce:
    parsed = _parse(name)
    assert isinstance(parsed, Bounce), parsed
    return parsed


def test_postfix_rfc3464_hard_bounce() -> None:
    # Given Postfix's DSN for a 5.1.1 with the whole message returned / When it is read
    bounce = _bounce("postfix_hard_511.eml")
    # Then it is a hard bounce for that recipient, with the code and the server's words
    assert bounce.form == "rfc3464"
    assert bounce.bounce_type is BounceType.HARD
    assert bounce.code == "5.1.1"
    assert bounce.reason == (
        "550 5.1.1 <nobody@customer.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert bounce.recipients == ("nobody@customer.example",)
    # ...and the returned message's keys
    assert bounce.mail_id == "msg-hard-1"
    assert bounce.message_id == "<9d1c27a0b4e54f7c8a1e2b3c4d5e6f70@acme.example>"
    assert bounce.returned_recipients == ("nobody@customer.example",)
    assert bounce.notified_at == 1796116447.0  # its Date: 2026-12-01 09:14:07 UTC


def test_postfix_rfc3464_soft_bounce_from_returned_headers_only() -> None:
    # Given a 4.2.2 (mailbox full) returning only the headers (text/rfc822-headers)
    bounce = _bounce("postfix_soft_422.eml")
    # Then it is soft, and the keys come from those headers
    assert bounce.bounce_type is BounceType.SOFT
    assert bounce.code == "4.2.2"
    assert bounce.reason == "452 4.2.2 <full@customer.example>: Mailbox full"
    assert bounce.mail_id == "msg-soft-1"
    assert bounce.message_id == "<1a2b3c4d5e6f708192a3b4c5d6e7f801@acme.example>"


def test_exim_non_standard_bounce() -> None:
    # Given Exim's text bounce (X-Failed-Recipients, the message pasted below a marker)
    bounce = _bounce("exim_nonstandard.eml")
    # Then flufl.bounce finds the recipient; the code and reason come from its paragraph
    assert bounce.form == "non-standard"
    assert bounce.recipients == ("gone@oldcorp.example",)
    assert bounce.bounce_type is BounceType.HARD
    assert bounce.code == "5.1.1"
    assert "550 5.1.1 <gone@oldcorp.example>... User unknown" in bounce.reason
    # ...and the keys come from the pasted copy of the message
    assert bounce.mail_id == "msg-exim-1"
    assert bounce.message_id == "<5e6f708192a3b4c5d6e7f8091a2b3c4d@acme.example>"
    assert bounce.returned_recipients == ("gone@oldcorp.example",)


def test_qmail_non_standard_bounce() -> None:
    # Given qmail's QSBMF bounce
    bounce = _bounce("qmail_nonstandard.eml")
    # Then the recipient, the code its remote host gave, and the keys of the copy are found
    assert bounce.recipients == ("closed@isp.example",)
    assert bounce.bounce_type is BounceType.HARD
    assert bounce.code == "5.2.1"
    assert "Mailbox disabled for this recipient" in bounce.reason
    assert bounce.mail_id == "msg-qmail-1"
    assert bounce.message_id == "<708192a3b4c5d6e7f8091a2b3c4d5e6f@acme.example>"
    # "-0000" (zone unknown) is read as UTC, whatever this machine's zone
    assert bounce.notified_at == 1796128802.0


def test_an_auto_reply_is_not_a_bounce() -> None:
    # Given an out-of-office answer (auto-replied, In-Reply-To our message) / Then no bounce
    assert isinstance(_parse("autoreply_not_bounce.eml"), NotABounce)


def test_a_notification_returning_only_the_message_id() -> None:
    # Given a DSN whose returned headers carry a Message-ID but no X-Genro-Mail-ID
    bounce = _bounce("message_id_only.eml")
    # Then the Message-ID is the key, and the recipient (Final-Recipient only) is kept
    assert bounce.mail_id is None
    assert bounce.message_id == "<quote-88.client-chosen@acme.example>"
    assert bounce.recipients == ("left@partner.example",)
    assert bounce.code == "5.1.1"


def _dsn(*recipient_blocks: str, returned: str = "") -> bytes:
    blocks = "\n".join(recipient_blocks)
    tail = f"--B\nContent-Type: text/rfc822-headers\n\n{returned}\n" if returned else ""
    return (
        "From: MAILER-DAEMON@mx.test\nTo: bounces@proxy.test\nSubject: DSN\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nSee below.\n\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.test\n\n{blocks}\n{tail}--B--\n"
    ).encode()


def test_a_success_dsn_is_not_a_bounce() -> None:
    # Given a DSN that reports a delivery (Action: delivered, 2.0.0)
    raw = _dsn("Final-Recipient: rfc822; a@b.test\nAction: delivered\nStatus: 2.0.0\n")
    # Then it is no bounce
    assert isinstance(parse_notification(raw), NotABounce)


def test_several_recipients_each_keep_their_own_failure() -> None:
    # Given one DSN with a delay for one recipient and a failure for another
    raw = _dsn(
        "Final-Recipient: rfc822; Slow@B.test\nAction: delayed\nStatus: 4.4.7\n",
        "Final-Recipient: rfc822; gone@b.test\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 no such user\n",
        "Final-Recipient: rfc822; fine@b.test\nAction: relayed\nStatus: 2.0.0\n",
        returned="Message-ID: <m1@a.test>\nX-Genro-Mail-ID: m1\nTo: slow@b.test, gone@b.test\n",
    )
    bounce = parse_notification(raw)
    assert isinstance(bounce, Bounce)
    # Then each failed recipient has its type and code (lower-cased address); the hard one
    # stands for the notification, and a missing diagnostic reads as the code
    assert [(f.recipient, f.bounce_type, f.code) for f in bounce.failures] == [
        ("slow@b.test", BounceType.SOFT, "4.4.7"),
        ("gone@b.test", BounceType.HARD, "5.1.1"),
    ]
    assert bounce.failures[0].reason == "delivery failed (4.4.7)"
    assert bounce.bounce_type is BounceType.HARD
    assert bounce.reason == "550 no such user"
    assert bounce.returned_recipients == ("slow@b.test", "gone@b.test")


def test_a_failure_without_status_is_hard_and_a_long_reason_is_cut() -> None:
    # Given Action: failed with no Status and a very long diagnostic
    raw = _dsn(
        "Final-Recipient: rfc822; a@b.test\nAction: failed\n"
        f"Diagnostic-Code: x-unix; {'word ' * 300}\n"
    )
    bounce = parse_notification(raw)
    assert isinstance(bounce, Bounce)
    # Then it is 5.0.0 hard, with its reason bounded
    assert (bounce.bounce_type, bounce.code) == (BounceType.HARD, "5.0.0")
    assert len(bounce.reason) == MAX_REASON_CHARS
    # ...and with nothing returned, no key
    assert (bounce.mail_id, bounce.message_id, bounce.returned_recipients) == (None, None, ())


@pytest.mark.parametrize(
    ("code", "expected"),
    [("5.1.1", BounceType.HARD), ("5.7.1", BounceType.HARD), ("4.2.2", BounceType.SOFT)],
)
def test_the_class_of_the_code_decides_hard_or_soft(code: str, expected: BounceType) -> None:
    assert bounce_type_of(code) is expected


@pytest.mark.parametrize("raw", [b"", b"not an email at all", b"\xff\xfe\x00garbage\r\n\r\n"])
def test_garbage_is_not_a_bounce(raw: bytes) -> None:
    # Given bytes that are no notification / Then reading them raises nothing
    assert isinstance(parse_notification(raw), NotABounce)


def _sent(**fields: object) -> SentMessage:
    base: dict[str, object] = {
        "tenant_id": "acme",
        "id": "42",
        "message_id_header": None,
        "recipients": (),
        "sent_ts": 100.0,
    }
    return SentMessage(**(base | fields))  # type: ignore[arg-type]


def test_a_candidate_is_checked_against_the_message_id_then_the_recipients() -> None:
    bounce = _bounce("postfix_hard_511.eml")
    mid = "<9d1c27a0b4e54f7c8a1e2b3c4d5e6f70@acme.example>"
    # The Message-ID decides when both are known, whatever the recipients
    assert consistent(_sent(message_id_header=mid, recipients=("x@y.test",)), bounce)
    assert not consistent(_sent(message_id_header="<other@x>"), bounce)
    # ...else the recipients, when both are known
    assert consistent(_sent(recipients=("Nobody@Customer.example",)), bounce)
    assert not consistent(_sent(recipients=("x@y.test",)), bounce)
    # ...else nothing contradicts it
    assert consistent(_sent(), bounce)


def test_the_latest_for_a_recipient_stays_within_one_tenant() -> None:
    older, newer = _sent(id="a", sent_ts=10.0), _sent(id="b", sent_ts=20.0)
    assert latest_for_recipient([older, newer], before=30.0) == newer
    # Sent after the notification: not it
    assert latest_for_recipient([older, newer], before=15.0) == older
    # Two tenants, or two at the same moment: no guess
    assert latest_for_recipient([older, _sent(tenant_id="globex", id="c")], 200.0) is None
    assert latest_for_recipient([newer, _sent(id="d", sent_ts=20.0)], 30.0) is None
    assert latest_for_recipient([], 30.0) is None


def test_the_bounce_event_and_its_report_line() -> None:
    # Given a failure / When its event is made
    failure = FailedRecipient("r@x.test", BounceType.SOFT, "4.2.2", "Mailbox full")
    event = bounce_event("m-1", failure, 1796116447.5)
    # Then the report line is SPEC.md's {id, bounce_ts, bounce_type, bounce_code, bounce_reason}
    assert report_entry(event) == {
        "id": "m-1",
        "bounce_ts": 1796116447,
        "bounce_type": "soft",
        "bounce_code": "4.2.2",
        "bounce_reason": "Mailbox full",
    }
    # ...a bounce is no final outcome (the message was sent), and the same failure has the
    # same key whatever the case of the address; another code, another key
    assert not is_final(event)
    assert bounce_key("R@X.test", "4.2.2") == bounce_key("r@x.test", "4.2.2")
    assert bounce_key("r@x.test", "5.2.2") != bounce_key("r@x.test", "4.2.2")


def test_the_bounce_time_is_the_notification_date_unless_it_is_in_the_future() -> None:
    bounce = _bounce("postfix_hard_511.eml")
    assert bounce_ts_of(bounce, now=1796116447.0 + 60) == 1796116447.0
    assert bounce_ts_of(bounce, now=1796116000.0) == 1796116000.0
