"""The bounce reader's run against in-memory ports (tests/support/bounce_fakes.py): matching,
events, what happens to each mail, the cursor, duplicates and crashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailproxy.domain.bounces import MailboxCursor, SentMessage
from mailproxy.domain.status import EventType
from mailproxy.service import bounces
from mailproxy.service.bounces import BounceRun, BounceRunSettings, run_once
from tests.support.bounce_fakes import Crash, FakeCursors, FakeEvents, FakeLookup, FakeMailbox

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bounces"
NOW = 1796200000.0  # 2026-12-02, after every fixture's Date
SETTINGS = BounceRunSettings(mailbox_key="imap.test/bounces@proxy.test/INBOX")
KEY = SETTINGS.mailbox_key


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


SENT = [
    SentMessage(
        "acme",
        "msg-hard-1",
        "<9d1c27a0b4e54f7c8a1e2b3c4d5e6f70@acme.example>",
        ("nobody@customer.example",),
        1796116444.0,
    ),
    SentMessage(
        "acme",
        "msg-soft-1",
        "<1a2b3c4d5e6f708192a3b4c5d6e7f801@acme.example>",
        ("full@customer.example",),
        1796181639.0,
    ),
    SentMessage("acme", "msg-exim-1", None, ("gone@oldcorp.example",), 1796122937.0),
    SentMessage("acme", "msg-qmail-1", None, ("closed@isp.example",), 1796128800.0),
    SentMessage(
        "globex",
        "quote-88",
        "<quote-88.client-chosen@acme.example>",
        ("left@partner.example",),
        1796142610.0,
    ),
]


class World:
    def __init__(self, sent: list[SentMessage] | None = None) -> None:
        self.mailbox = FakeMailbox()
        self.lookup = FakeLookup(list(SENT if sent is None else sent))
        self.events = FakeEvents()
        self.cursors = FakeCursors()
        self.now = NOW

    def run(self, settings: BounceRunSettings = SETTINGS) -> BounceRun:
        return run_once(
            settings,
            self.mailbox.opener,
            self.lookup,
            self.events,
            self.cursors,
            lambda: self.now,
        )


def test_a_hard_bounce_is_recorded_on_its_message_and_moved_out() -> None:
    # Given Postfix's 5.1.1 for acme's msg-hard-1 in the mailbox
    world = World()
    uid = world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    # When the reader runs
    result = world.run()
    # Then one hard bounce event is on the message, with SPEC.md's fields
    [event] = world.events.of("acme", "msg-hard-1")
    assert event.event_type is EventType.BOUNCE
    assert event.metadata == {
        "bounce_type": "hard",
        "bounce_code": "5.1.1",
        "bounce_reason": "550 5.1.1 <nobody@customer.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
        "bounce_recipient": "nobody@customer.example",
    }
    assert event.event_ts == 1796116447.0  # the notification's Date
    # ...the mail is out of the folder, the cursor at it, and the run says so
    assert world.mailbox.folder == {}
    assert world.cursors.cursors[KEY] == MailboxCursor(1, uid)
    assert (result.read, result.hard, result.soft, result.unmatched) == (1, 1, 0, 0)
    assert dict(result.by_tenant) == {("acme", "hard"): 1}
    assert world.mailbox.opened == 1


def test_soft_and_non_standard_bounces_are_matched_by_their_mail_id() -> None:
    world = World()
    for name in ("postfix_soft_422.eml", "exim_nonstandard.eml", "qmail_nonstandard.eml"):
        world.mailbox.deliver(fixture(name))
    result = world.run()
    assert (result.read, result.hard, result.soft, result.unmatched) == (3, 2, 1, 0)
    assert world.events.of("acme", "msg-soft-1")[0].metadata["bounce_code"] == "4.2.2"
    assert world.events.of("acme", "msg-exim-1")[0].metadata["bounce_type"] == "hard"
    assert world.events.of("acme", "msg-qmail-1")[0].metadata["bounce_code"] == "5.2.1"
    # ...and one session served the whole run
    assert world.mailbox.opened == 1


def test_a_notification_with_only_the_message_id_is_matched_by_it() -> None:
    # Given a DSN without X-Genro-Mail-ID, for globex's quote-88 (a client-chosen Message-ID)
    world = World()
    world.mailbox.deliver(fixture("message_id_only.eml"))
    # When the reader runs / Then the Message-ID finds it
    assert world.run().hard == 1
    assert len(world.events.of("globex", "quote-88")) == 1


def test_a_mail_id_in_two_tenants_is_told_apart_by_the_message_id() -> None:
    # Given msg-hard-1 exists in two tenants, with their own Message-IDs
    other = SentMessage("initech", "msg-hard-1", "<other@initech.example>", ("x@y.test",), 1.0)
    world = World([*SENT, other])
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    # When the reader runs / Then the bounce lands on acme's, whose Message-ID it returns
    world.run()
    assert len(world.events.of("acme", "msg-hard-1")) == 1
    assert world.events.of("initech", "msg-hard-1") == []


def test_a_mail_id_the_notification_contradicts_is_not_taken() -> None:
    # Given only another tenant's msg-hard-1 (another Message-ID, another recipient)
    other = SentMessage("initech", "msg-hard-1", "<other@initech.example>", ("x@y.test",), 1.0)
    world = World([other])
    uid = world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    # When the reader runs / Then nothing is recorded: it is unmatched, kept and seen
    result = world.run()
    assert world.events.history == {}
    assert (result.unmatched, result.unmatched_uids) == (1, [uid])
    assert uid in world.mailbox.folder
    assert uid in world.mailbox.seen


def _dsn_without_returned_headers(recipient: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.test\nTo: bounces@proxy.test\nSubject: failure\n"
        "Date: Wed, 02 Dec 2026 10:00:00 +0000\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nFailed.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.test\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: 5.1.1\n\n--B--\n"
    ).encode()


def test_without_any_key_the_latest_message_to_the_recipient_is_taken() -> None:
    # Given two messages of one tenant to the recipient, before the notification (10:00),
    # and a third sent after it
    ten = 1796205600.0
    sent = [
        SentMessage("acme", "older", None, ("r@x.test",), ten - 7200),
        SentMessage("acme", "latest", None, ("r@x.test",), ten - 60),
        SentMessage("acme", "after", None, ("r@x.test",), ten + 3600),
    ]
    world = World(sent)
    world.now = ten + 7200
    world.mailbox.deliver(_dsn_without_returned_headers("r@x.test"))
    # When the reader runs / Then the latest sent before the notification has the bounce
    world.run()
    assert [k for k, v in world.events.history.items() if v] == [("acme", "latest")]


def test_without_any_key_a_recipient_of_two_tenants_is_unmatched() -> None:
    # Given two tenants sent to the recipient: the bounce must never go to the wrong one
    ten = 1796205600.0
    sent = [
        SentMessage("acme", "a1", None, ("r@x.test",), ten - 60),
        SentMessage("globex", "g1", None, ("r@x.test",), ten - 120),
    ]
    world = World(sent)
    world.now = ten + 60
    world.mailbox.deliver(_dsn_without_returned_headers("r@x.test"))
    result = world.run()
    assert (result.unmatched, world.events.history) == (1, {})


def test_an_old_message_to_the_recipient_is_not_a_match() -> None:
    # Given the recipient's only message was sent weeks before the notification
    ten = 1796205600.0
    world = World([SentMessage("acme", "old", None, ("r@x.test",), ten - 30 * 86400)])
    world.now = ten + 60
    world.mailbox.deliver(_dsn_without_returned_headers("r@x.test"))
    assert world.run().unmatched == 1


def test_an_unmatched_notification_is_kept_and_not_read_again() -> None:
    # Given a bounce for a message the proxy does not know
    world = World([])
    uid = world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    # When the reader runs twice
    first = world.run()
    second = world.run()
    # Then it is counted once, kept in the folder, seen, and the cursor is past it
    assert (first.unmatched, second.unmatched, second.read) == (1, 0, 0)
    assert uid in world.mailbox.folder
    assert uid in world.mailbox.seen
    assert world.cursors.cursors[KEY].last_uid == uid


def test_an_auto_reply_is_left_for_a_person() -> None:
    world = World()
    uid = world.mailbox.deliver(fixture("autoreply_not_bounce.eml"))
    result = world.run()
    assert (result.not_bounces, result.unmatched, result.hard) == (1, 0, 0)
    # ...left in the folder and unseen, but not read again
    assert uid in world.mailbox.folder
    assert uid not in world.mailbox.seen
    assert world.run().read == 0


def test_a_notification_delivered_twice_records_one_event() -> None:
    # Given the same DSN delivered twice
    world = World()
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    # When the reader runs
    result = world.run()
    # Then one event, one duplicate, and both mails are out of the folder
    assert len(world.events.of("acme", "msg-hard-1")) == 1
    assert (result.hard, result.duplicates) == (1, 1)
    assert world.mailbox.folder == {}


def test_a_second_notification_of_the_same_failure_records_no_second_event() -> None:
    # Given the DSN, then a copy the MTA made later (another Date), in two runs
    world = World()
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    world.run()
    later = fixture("postfix_hard_511.eml").replace(b"09:14:07", b"11:14:07")
    world.mailbox.deliver(later)
    # When read / Then the same recipient and code is one bounce still
    assert world.run().duplicates == 1
    assert len(world.events.of("acme", "msg-hard-1")) == 1


def test_a_new_uidvalidity_reads_what_is_still_in_the_folder() -> None:
    # Given a processed bounce and an unmatched one, then the folder rebuilt
    world = World([SENT[0]])
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    world.mailbox.deliver(fixture("postfix_soft_422.eml"))  # unknown here: unmatched
    world.run()
    world.mailbox.rebuild()
    world.mailbox.deliver(fixture("exim_nonstandard.eml"))
    world.lookup.messages.append(SENT[2])
    # When the reader runs
    result = world.run()
    # Then the processed one is not read again (it left the folder), what stayed is, and the
    # cursor follows the new UIDVALIDITY
    assert result.read == 2
    assert (result.hard, result.unmatched) == (1, 1)
    assert len(world.events.of("acme", "msg-hard-1")) == 1
    assert world.cursors.cursors[KEY] == MailboxCursor(2, 2)


def test_a_new_uidvalidity_with_nothing_new_is_kept() -> None:
    world = World()
    world.cursors.cursors[KEY] = MailboxCursor(7, 40)
    world.run()
    assert world.cursors.cursors[KEY] == MailboxCursor(1, 0)


def test_a_crash_after_the_events_reads_the_mail_again_without_a_second_event() -> None:
    # Given the process dies right after the event is written (before the move and cursor)
    world = World()
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    world.events.crash_after_writes = 1
    with pytest.raises(Crash):
        world.run()
    assert KEY not in world.cursors.cursors
    # When the reader runs again
    result = world.run()
    # Then the mail is read again, the event is found written, and the mail moves out
    assert (result.read, result.hard, result.duplicates) == (1, 0, 1)
    assert len(world.events.of("acme", "msg-hard-1")) == 1
    assert world.mailbox.folder == {}


def test_a_crash_before_the_cursor_is_saved_loses_nothing() -> None:
    # Given the process dies after moving the mail, before saving the cursor
    world = World()
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    world.mailbox.deliver(fixture("postfix_soft_422.eml"))
    world.cursors.crash_next_save = True
    with pytest.raises(Crash):
        world.run()
    # When the reader runs again / Then the moved mail is gone, the next one is read
    result = world.run()
    assert (result.read, result.soft) == (1, 1)
    assert len(world.events.of("acme", "msg-hard-1")) == 1


def test_a_mailbox_failure_stops_the_run_and_says_why() -> None:
    world = World()
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    world.mailbox.fail_on_read = True
    result = world.run()
    assert result.error == "UID SEARCH: timed out"
    assert world.events.history == {}


def test_a_store_failure_keeps_what_was_done_before_it() -> None:
    world = World()
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    world.cursors.fail_saves = True
    result = world.run()
    assert result.error == "DynamoDB: throttled"
    assert result.hard == 1


def test_a_run_stops_at_its_limit_and_the_next_goes_on() -> None:
    world = World()
    for name in ("postfix_hard_511.eml", "postfix_soft_422.eml", "exim_nonstandard.eml"):
        world.mailbox.deliver(fixture(name))
    small = BounceRunSettings(mailbox_key=KEY, max_messages=2)
    first = world.run(small)
    second = world.run(small)
    assert (first.read, first.more, second.read, second.more) == (2, True, 1, False)
    assert world.mailbox.folder == {}


def test_a_mail_that_breaks_the_parser_is_kept_as_unmatched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(raw: bytes) -> None:
        raise ValueError("a parser bug")

    monkeypatch.setattr(bounces, "parse_notification", broken)
    world = World()
    uid = world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    result = world.run()
    assert (result.unmatched, result.error) == (1, None)
    assert uid in world.mailbox.folder


def test_a_notification_dated_in_the_future_is_dated_now() -> None:
    world = World()
    world.now = 1796116000.0  # before the DSN's Date (a remote clock ahead)
    world.lookup.messages = [SENT[0]]
    world.mailbox.deliver(fixture("postfix_hard_511.eml"))
    world.run()
    assert world.events.of("acme", "msg-hard-1")[0].event_ts == 1796116000.0
