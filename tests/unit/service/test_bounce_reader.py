"""The bounce reader's invocation over in-memory ports: disabled, incomplete, not yet due,
busy (another run holds the lease), a run that records a bounce, a mailbox that fails, and the
lease given back whatever happens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailproxy.domain.bounces import MailboxCursor, SentMessage
from mailproxy.domain.instance import BounceRunRecord, InstanceSettings, StoredInstance
from mailproxy.secret_box import bounce_password_context
from mailproxy.service.bounce_reader import (
    ReaderContext,
    ReaderOutcome,
    ReaderState,
    read_bounces,
)
from mailproxy.service.ports import MailboxOpener
from tests.support.bounce_fakes import FakeEvents, FakeLookup, FakeMailbox
from tests.support.fakes import FakeSealer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bounces"
NOW = 1796200000.0
SENT = SentMessage("acme", "msg-hard-1", None, ("nobody@customer.example",), 1796116444.0)


@dataclass
class MemoryReaderStore:
    stored: StoredInstance | None = None
    runs: dict[str, BounceRunRecord] = field(default_factory=dict)
    cursors: dict[str, MailboxCursor] = field(default_factory=dict)
    lease: tuple[str, float] | None = None
    released: list[str] = field(default_factory=list)

    def get_instance_settings(self) -> StoredInstance | None:
        return self.stored

    def last_bounce_run(self, mailbox_key: str) -> BounceRunRecord | None:
        return self.runs.get(mailbox_key)

    def record_bounce_run(self, mailbox_key: str, at: float, error: str | None = None) -> None:
        self.runs[mailbox_key] = BounceRunRecord(at, error)

    def take_bounce_lease(self, owner: str, now: float, until: float) -> bool:
        if self.lease is not None and self.lease[1] > now:
            return False
        self.lease = (owner, until)
        return True

    def release_bounce_lease(self, owner: str) -> None:
        self.released.append(owner)
        if self.lease is not None and self.lease[0] == owner:
            self.lease = None

    def load_bounce_cursor(self, mailbox_key: str) -> MailboxCursor | None:
        return self.cursors.get(mailbox_key)

    def save_bounce_cursor(self, mailbox_key: str, cursor: MailboxCursor) -> None:
        self.cursors[mailbox_key] = cursor


ENABLED = InstanceSettings(
    bounce_enabled=True, bounce_imap_host="imap.test", bounce_imap_user="bounces"
)
SEALED = FakeSealer().seal("imap-secret", bounce_password_context())


class Reader:
    def __init__(self, stored: StoredInstance | None) -> None:
        self.store = MemoryReaderStore(stored)
        self.mailbox = FakeMailbox()
        self.events = FakeEvents()
        self.passwords: list[str] = []

    def mailbox_for(self, settings: InstanceSettings, password: str) -> MailboxOpener:
        self.passwords.append(password)
        return self.mailbox.opener

    def run(self, now: float = NOW, force: bool = False) -> ReaderOutcome:
        ctx = ReaderContext(
            store=self.store,
            secrets=FakeSealer(),
            mailbox_for=self.mailbox_for,
            lookup_for=lambda since: FakeLookup([SENT]),
            events=self.events,
            clock=lambda: now,
            owner="run-1",
            lease_seconds=330,
        )
        return read_bounces(ctx, force=force)


def test_disabled_or_never_set_reads_nothing() -> None:
    for stored in (None, StoredInstance(InstanceSettings())):
        reader = Reader(stored)
        outcome = reader.run()
        assert outcome.state is ReaderState.DISABLED
        assert outcome.failing is None
        assert reader.mailbox.opened == 0


def test_enabled_without_a_password_is_incomplete_and_failing() -> None:
    reader = Reader(StoredInstance(ENABLED))
    outcome = reader.run()
    assert outcome.state is ReaderState.INCOMPLETE
    assert outcome.failing is True


def test_a_run_records_the_bounce_with_the_unsealed_password_and_gives_the_lease_back() -> None:
    # Given an enabled reader whose mailbox holds a DSN of a sent message
    reader = Reader(StoredInstance(ENABLED, SEALED))
    reader.mailbox.deliver((FIXTURES / "postfix_hard_511.eml").read_bytes())
    # When it is ticked
    outcome = reader.run()
    # Then the mailbox was opened with the password in clear, the bounce recorded, the run
    # kept with its mailbox, and the lease given back
    assert outcome.state is ReaderState.RAN
    assert outcome.run is not None
    assert outcome.run.hard == 1
    assert outcome.failing is False
    assert reader.passwords == ["imap-secret"]
    assert len(reader.events.of("acme", "msg-hard-1")) == 1
    assert reader.store.runs[ENABLED.mailbox_key] == BounceRunRecord(NOW)
    assert reader.store.lease is None


def test_within_the_poll_interval_only_a_reload_runs() -> None:
    reader = Reader(StoredInstance(ENABLED, SEALED))
    reader.run()
    assert reader.run(NOW + 30).state is ReaderState.NOT_DUE
    assert reader.run(NOW + 30, force=True).state is ReaderState.RAN
    assert reader.run(NOW + 120).state is ReaderState.RAN


def test_another_run_holding_the_lease_keeps_this_one_out() -> None:
    reader = Reader(StoredInstance(ENABLED, SEALED))
    reader.store.lease = ("other", NOW + 100)
    assert reader.run().state is ReaderState.BUSY
    assert reader.mailbox.opened == 0
    assert reader.store.lease == ("other", NOW + 100)


def test_a_failing_mailbox_is_kept_as_failing_until_a_run_goes_through() -> None:
    reader = Reader(StoredInstance(ENABLED, SEALED))
    reader.mailbox.fail_on_read = True
    failed = reader.run()
    assert failed.failing is True
    assert reader.store.runs[ENABLED.mailbox_key].error
    # a tick that is not due still says failing (the alarm counts every tick)
    assert reader.run(NOW + 30).failing is True
    reader.mailbox.fail_on_read = False
    assert reader.run(NOW + 60).failing is False


def test_the_lease_is_given_back_when_the_run_raises() -> None:
    reader = Reader(StoredInstance(ENABLED, "sealed for something else"))
    with pytest.raises(ValueError, match="another context"):
        reader.run()
    assert reader.store.released == ["run-1"]
    assert reader.store.lease is None
