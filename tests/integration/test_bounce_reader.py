"""The bounce reader end to end over a real IMAP server (pymap, tests/support/imap_server.py)
with real notifications appended to its folder, and in-memory stores: hard, soft,
non-standard, unmatched, the same DSN delivered twice, a folder with a new UIDVALIDITY, and a
restart after a crash between the events and the cursor."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailproxy.delivery.imap_mailbox import ImapMailbox, ImapSettings
from mailproxy.domain.bounces import SentMessage
from mailproxy.service.bounces import BounceRun, BounceRunSettings, run_once
from tests.support.bounce_fakes import Crash, FakeCursors, FakeEvents, FakeLookup
from tests.support.imap_server import ImapServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"
NOW = 1796200000.0

SENT = [
    SentMessage("acme", "msg-hard-1", None, ("nobody@customer.example",), 1796116444.0),
    SentMessage("acme", "msg-soft-1", None, ("full@customer.example",), 1796181639.0),
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


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    running = ImapServer(tmp_path_factory.mktemp("imap"))
    running.start()
    yield running
    running.stop()


class Reader:
    """The reader as the wiring will run it: a new IMAP session per run."""

    def __init__(self, server: ImapServer, imap: ImapSettings) -> None:
        self.server = server
        self.imap = imap
        self.lookup = FakeLookup(list(SENT))
        self.events = FakeEvents()
        self.cursors = FakeCursors()
        self.settings = BounceRunSettings(mailbox_key=f"{imap.host}/{imap.user}/{imap.folder}")

    def run(self) -> BounceRun:
        return run_once(
            self.settings,
            lambda: ImapMailbox(self.imap, self.server.client_context()),
            self.lookup,
            self.events,
            self.cursors,
            lambda: NOW,
        )

    def bounce_types(self) -> dict[str, list[tuple[str, str]]]:
        return {
            message_id: [(e.metadata["bounce_type"], e.metadata["bounce_code"]) for e in events]
            for (_, message_id), events in sorted(self.events.history.items())
        }


@pytest.fixture(params=["starttls", "ssl"])
def reader(server: ImapServer, request: pytest.FixtureRequest) -> Reader:
    folder = f"Bounces-{uuid.uuid4().hex[:8]}"
    imap = replace(
        server.settings(folder, request.param),
        processed_folder=f"{folder}-processed",
    )
    server.create(folder)
    return Reader(server, imap)


def test_hard_soft_and_non_standard_bounces_become_events(reader: Reader) -> None:
    # Given Postfix hard and soft DSNs, Exim's and qmail's text bounces, a DSN with only a
    # Message-ID, and an out-of-office answer in the bounce folder
    folder = reader.imap.folder
    for name in (
        "postfix_hard_511.eml",
        "postfix_soft_422.eml",
        "exim_nonstandard.eml",
        "qmail_nonstandard.eml",
        "message_id_only.eml",
        "autoreply_not_bounce.eml",
    ):
        reader.server.append(folder, fixture(name))
    # When the reader runs
    result = reader.run()
    # Then each failure is one bounce event on its message, hard or soft by its code
    assert reader.bounce_types() == {
        "msg-exim-1": [("hard", "5.1.1")],
        "msg-hard-1": [("hard", "5.1.1")],
        "msg-qmail-1": [("hard", "5.2.1")],
        "msg-soft-1": [("soft", "4.2.2")],
        "quote-88": [("hard", "5.1.1")],
    }
    assert (result.read, result.hard, result.soft, result.not_bounces) == (6, 4, 1, 1)
    assert result.error is None
    # ...the bounces are out of the folder, in the processed one; the answer stays, unseen
    [left] = reader.server.uids(folder)
    assert "\\Seen" not in reader.server.flags(folder, left)
    assert len(reader.server.uids(reader.imap.processed_folder)) == 5
    # ...and a second run reads nothing
    assert reader.run().read == 0


def test_an_unmatched_notification_is_kept_seen_and_counted_once(reader: Reader) -> None:
    # Given a bounce for a message the proxy does not know
    reader.lookup.messages = []
    folder = reader.imap.folder
    uid = reader.server.append(folder, fixture("postfix_hard_511.eml"))
    # When the reader runs twice
    first, second = reader.run(), reader.run()
    # Then it is counted once, and kept in the folder, seen
    assert (first.unmatched, first.unmatched_uids, second.read) == (1, [uid], 0)
    assert reader.server.uids(folder) == [uid]
    assert "\\Seen" in reader.server.flags(folder, uid)
    assert reader.events.history == {}


def test_the_same_dsn_delivered_twice_is_one_event(reader: Reader) -> None:
    # Given the same DSN delivered twice, one before a run and one after it
    folder = reader.imap.folder
    reader.server.append(folder, fixture("postfix_hard_511.eml"))
    reader.server.append(folder, fixture("postfix_hard_511.eml"))
    first = reader.run()
    reader.server.append(folder, fixture("postfix_hard_511.eml"))
    second = reader.run()
    # Then one event in all, the copies counted as duplicates, and the folder empty
    assert reader.bounce_types() == {"msg-hard-1": [("hard", "5.1.1")]}
    assert (first.hard, first.duplicates, second.hard, second.duplicates) == (1, 1, 0, 1)
    assert reader.server.uids(folder) == []


def test_a_new_uidvalidity_reads_what_is_left_and_nothing_twice(reader: Reader) -> None:
    # Given a run that processed a bounce and kept an unmatched one
    folder = reader.imap.folder
    reader.lookup.messages = [SENT[0]]
    reader.server.append(folder, fixture("postfix_hard_511.eml"))
    unknown = fixture("postfix_soft_422.eml")
    reader.server.append(folder, unknown)
    reader.run()
    old = reader.cursors.cursors[reader.settings.mailbox_key]
    # ...then the folder rebuilt (a new UIDVALIDITY) with the unmatched one and a new bounce
    reader.server.rebuild(folder, [unknown, fixture("exim_nonstandard.eml")])
    reader.lookup.messages.append(SENT[2])
    # When the reader runs
    result = reader.run()
    # Then what is in the folder is read (the processed bounce was moved out: not again)
    assert (result.read, result.hard, result.unmatched) == (2, 1, 1)
    assert reader.bounce_types() == {
        "msg-exim-1": [("hard", "5.1.1")],
        "msg-hard-1": [("hard", "5.1.1")],
    }
    cursor = reader.cursors.cursors[reader.settings.mailbox_key]
    assert cursor.uidvalidity == reader.server.uidvalidity(folder) != old.uidvalidity


def test_a_restart_after_a_crash_between_the_events_and_the_cursor(reader: Reader) -> None:
    # Given the process dies right after writing the first bounce's event
    folder = reader.imap.folder
    reader.server.append(folder, fixture("postfix_hard_511.eml"))
    reader.server.append(folder, fixture("postfix_soft_422.eml"))
    reader.events.crash_after_writes = 1
    with pytest.raises(Crash):
        reader.run()
    # ...so the mail is still in the folder and the cursor was never saved
    assert len(reader.server.uids(folder)) == 2
    assert reader.cursors.cursors == {}
    # When the reader starts again
    result = reader.run()
    # Then both are read; the first's event is found written (no second one)
    assert (result.read, result.hard, result.soft, result.duplicates) == (2, 0, 1, 1)
    assert reader.bounce_types() == {
        "msg-hard-1": [("hard", "5.1.1")],
        "msg-soft-1": [("soft", "4.2.2")],
    }
    assert reader.server.uids(folder) == []


def test_a_wrong_password_is_reported_not_raised(reader: Reader) -> None:
    reader.imap = replace(reader.imap, password="wrong")
    result = reader.run()
    assert result.error is not None
    assert result.read == 0
