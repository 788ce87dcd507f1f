"""In-memory ports of the bounce reader (service/bounces.py): a mailbox folder, the sent
messages, the bounce events and the cursor; each can be told to fail once, as a crash."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from mailproxy.domain.bounces import MailboxCursor, MailboxMessage, SentMessage
from mailproxy.domain.errors import MailboxFailure, StorageFailure
from mailproxy.domain.record import MessageEvent


class Crash(Exception):
    """The process died here (a Lambda timeout, a kill): nothing after it ran."""


@dataclass
class FakeMailbox:
    uidvalidity: int = 1
    next_uid: int = 1
    folder: dict[int, bytes] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    processed: list[bytes] = field(default_factory=list)
    opened: int = 0
    fail_on_read: bool = False

    def deliver(self, raw: bytes) -> int:
        uid = self.next_uid
        self.next_uid += 1
        self.folder[uid] = raw
        return uid

    def rebuild(self) -> None:
        """A new UIDVALIDITY, the folder's mail renumbered from 1."""
        mails = [self.folder[uid] for uid in sorted(self.folder)]
        self.uidvalidity += 1
        self.folder, self.seen, self.next_uid = {}, set(), 1
        for raw in mails:
            self.deliver(raw)

    def new_messages(self, cursor: MailboxCursor | None) -> Iterator[MailboxMessage]:
        if self.fail_on_read:
            raise MailboxFailure("UID SEARCH: timed out")
        same = cursor is not None and cursor.uidvalidity == self.uidvalidity
        for uid in sorted(self.folder):
            if same and cursor is not None and uid <= cursor.last_uid:
                continue
            if uid in self.folder:
                yield MailboxMessage(uid, self.folder[uid])

    def mark_processed(self, uid: int) -> None:
        self.processed.append(self.folder.pop(uid))

    def mark_unmatched(self, uid: int) -> None:
        self.seen.add(uid)

    @contextmanager
    def opener(self) -> Iterator[FakeMailbox]:
        self.opened += 1
        yield self


@dataclass
class FakeLookup:
    messages: list[SentMessage] = field(default_factory=list)

    def by_mail_id(self, mail_id: str) -> list[SentMessage]:
        return [m for m in self.messages if m.id == mail_id]

    def by_message_id(self, message_id: str) -> list[SentMessage]:
        return [m for m in self.messages if m.message_id_header == message_id]

    def by_recipient(self, recipient: str, since: float) -> list[SentMessage]:
        return [
            m
            for m in self.messages
            if recipient in m.recipients and m.sent_ts is not None and m.sent_ts >= since
        ]


@dataclass
class FakeEvents:
    # (tenant_id, message_id) -> its bounce events, in the order written
    history: dict[tuple[str, str], list[MessageEvent]] = field(default_factory=dict)
    keys: set[tuple[str, str, str]] = field(default_factory=set)
    crash_after_writes: int | None = None  # Crash once, right after this many writes
    writes: int = 0

    def record_bounce(self, message: SentMessage, event: MessageEvent, dedupe_key: str) -> bool:
        key = (message.tenant_id, message.id, dedupe_key)
        if key in self.keys:
            return False
        self.keys.add(key)
        self.history.setdefault((message.tenant_id, message.id), []).append(event)
        self.writes += 1
        if self.crash_after_writes is not None and self.writes >= self.crash_after_writes:
            self.crash_after_writes = None
            raise Crash
        return True

    def of(self, tenant_id: str, message_id: str) -> list[MessageEvent]:
        return self.history.get((tenant_id, message_id), [])


@dataclass
class FakeCursors:
    cursors: dict[str, MailboxCursor] = field(default_factory=dict)
    fail_saves: bool = False
    crash_next_save: bool = False  # Crash once, before the save is written

    def load(self, mailbox_key: str) -> MailboxCursor | None:
        return self.cursors.get(mailbox_key)

    def save(self, mailbox_key: str, cursor: MailboxCursor) -> None:
        if self.fail_saves:
            raise StorageFailure("DynamoDB: throttled")
        if self.crash_next_save:
            self.crash_next_save = False
            raise Crash
        self.cursors[mailbox_key] = cursor
