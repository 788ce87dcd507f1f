"""The bounce mailbox adapter against a real IMAP server (pymap, tests/support/imap_server.py):
TLS verified both ways (implicit and STARTTLS), new mail in UID order from a cursor, processed
mail moved out, unmatched mail left seen, a new UIDVALIDITY, and failures as MailboxFailure."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailproxy.delivery.imap_mailbox import MAX_MESSAGE_BYTES, ImapMailbox
from mailproxy.domain.bounces import MailboxCursor
from mailproxy.domain.errors import MailboxFailure
from tests.support.imap_server import ImapServer
from tests.support.smtp_servers import free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    running = ImapServer(tmp_path_factory.mktemp("imap"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def folder() -> str:
    return f"Bounces-{uuid.uuid4().hex[:8]}"


def _mail(n: int) -> bytes:
    return f"From: a@b.test\nTo: c@d.test\nSubject: mail {n}\n\nbody {n}\n".encode()


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_new_mail_is_read_in_uid_order_over_verified_tls(
    server: ImapServer, folder: str, security: str
) -> None:
    # Given two mails in the folder
    first = server.append(folder, _mail(1))
    second = server.append(folder, _mail(2))
    # When the mailbox is opened with TLS (verified against the server's CA) and read
    with ImapMailbox(server.settings(folder, security), server.client_context()) as mailbox:  # type: ignore[arg-type]
        read = list(mailbox.new_messages(None))
        uidvalidity = mailbox.uidvalidity
    # Then both come, in UID order, whole, and the UIDVALIDITY is the folder's
    assert [m.uid for m in read] == [first, second]
    assert b"Subject: mail 1" in read[0].raw
    assert b"body 2" in read[1].raw
    assert uidvalidity == server.uidvalidity(folder)
    # ...and reading them did not mark them \Seen
    assert "\\Seen" not in server.flags(folder, first)


def test_a_cursor_reads_only_what_came_after_it(server: ImapServer, folder: str) -> None:
    # Given a cursor at the first of three mails
    uids = [server.append(folder, _mail(n)) for n in range(3)]
    with ImapMailbox(server.settings(folder), server.client_context()) as mailbox:
        cursor = MailboxCursor(mailbox.uidvalidity, uids[0])
        # When read from the cursor / Then only the two after it come
        assert [m.uid for m in mailbox.new_messages(cursor)] == uids[1:]
        # ...and from a cursor at the last one, nothing ("N:*" would give the last one)
        assert list(mailbox.new_messages(MailboxCursor(mailbox.uidvalidity, uids[-1]))) == []


def test_processed_mail_moves_out_and_unmatched_mail_stays_seen(
    server: ImapServer, folder: str
) -> None:
    # Given two mails
    processed = server.append(folder, _mail(1))
    unmatched = server.append(folder, _mail(2))
    settings = replace(server.settings(folder), processed_folder=f"{folder}-done")
    # When one is marked processed and the other unmatched
    with ImapMailbox(settings, server.client_context()) as mailbox:
        mailbox.mark_processed(processed)
        mailbox.mark_unmatched(unmatched)
    # Then the first is out of the folder, in the processed folder; the second stays, \Seen
    assert server.uids(folder) == [unmatched]
    assert len(server.uids(f"{folder}-done")) == 1
    assert "\\Seen" in server.flags(folder, unmatched)


def test_a_new_uidvalidity_reads_what_is_still_in_the_folder(
    server: ImapServer, folder: str
) -> None:
    # Given a cursor far along in a folder that is then rebuilt (a new UIDVALIDITY)
    server.append(folder, _mail(1))
    old = server.uidvalidity(folder)
    server.rebuild(folder, [_mail(2), _mail(3)])
    with ImapMailbox(server.settings(folder), server.client_context()) as mailbox:
        # When read with the old cursor
        read = list(mailbox.new_messages(MailboxCursor(old, 10_000)))
        # Then the UIDVALIDITY is the new one, and all that is in the folder comes
        assert mailbox.uidvalidity != old
    assert [b"body 2" in m.raw or b"body 3" in m.raw for m in read] == [True, True]


def test_a_certificate_that_is_not_trusted_is_refused(server: ImapServer, folder: str) -> None:
    # Given the system's trust store only (which does not know the test CA)
    server.create(folder)
    for security in ("ssl", "starttls"):
        mailbox = ImapMailbox(server.settings(folder, security), ssl.create_default_context())  # type: ignore[arg-type]
        # When opened / Then TLS fails, as a MailboxFailure
        with pytest.raises(MailboxFailure, match="TLS failed"):
            mailbox.open()
        mailbox.close()


def test_a_wrong_password_or_a_missing_folder_is_a_mailbox_failure(
    server: ImapServer, folder: str
) -> None:
    bad_login = replace(server.settings(folder), password="wrong")
    with pytest.raises(MailboxFailure):
        ImapMailbox(bad_login, server.client_context()).open()
    with pytest.raises(MailboxFailure, match="SELECT"):
        ImapMailbox(server.settings("No-Such-Folder"), server.client_context()).open()


def test_a_server_that_never_greets_times_out(server: ImapServer) -> None:
    # Given a port that accepts connections and never says a word
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    settings = replace(server.settings(), port=port, security="plain", timeout_seconds=0.5)
    started = time.monotonic()
    try:
        # When opened / Then it fails within about the timeout, as a MailboxFailure
        with pytest.raises(MailboxFailure, match="timed out"):
            ImapMailbox(settings, server.client_context()).open()
        assert time.monotonic() - started < 5
    finally:
        for sock in accepted:
            sock.close()
        listener.close()


def test_the_server_support_keeps_its_files_in_the_given_folder(tmp_path: Path) -> None:
    # The server's certificate and log live in its work folder, not in the tree
    ImapServer(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"imap-cert.pem", "imap-key.pem"}


@pytest.mark.parametrize("uidplus", [True, False])
def test_without_move_processed_mail_is_copied_then_deleted(
    server: ImapServer, folder: str, uidplus: bool
) -> None:
    # Given a server that lists no MOVE (and, the second time, no UIDPLUS either)
    processed = server.append(folder, _mail(1))
    kept = server.append(folder, _mail(2))
    settings = replace(server.settings(folder), processed_folder=f"{folder}-done")
    with ImapMailbox(settings, server.client_context()) as mailbox:
        mailbox._capabilities -= {"MOVE"} if uidplus else {"MOVE", "UIDPLUS"}
        # When a mail is marked processed
        mailbox.mark_processed(processed)
        # Then a copy is in the processed folder, and reading skips the original
        assert [m.uid for m in mailbox.new_messages(None)] == [kept]
    assert len(server.uids(f"{folder}-done")) == 1
    if uidplus:
        # ...which UID EXPUNGE removed (that one only)
        assert server.uids(folder) == [kept]
    else:
        # ...which stays, \Deleted: a plain EXPUNGE would remove others' \Deleted mail too
        assert server.uids(folder) == [processed, kept]
        assert "\\Deleted" in server.flags(folder, processed)


def test_a_huge_mail_is_read_up_to_the_limit(server: ImapServer, folder: str) -> None:
    # Given a notification returning a message with a large attachment
    uid = server.append(folder, _mail(1) + b"x" * (MAX_MESSAGE_BYTES + 4096))
    with ImapMailbox(server.settings(folder), server.client_context()) as mailbox:
        # When read / Then its first MAX_MESSAGE_BYTES come (the report and headers are first)
        [message] = mailbox.new_messages(None)
    assert message.uid == uid
    assert len(message.raw) == MAX_MESSAGE_BYTES
    assert message.raw.startswith(b"From: a@b.test")
