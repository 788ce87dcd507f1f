"""The bounce reader's invocation: whether to read the mailbox now (enabled, due per
bounce_poll_interval, nobody else reading it), then one run (service/bounces.py's run_once)
with the mailbox's password unsealed, and the run's time and outcome kept with its cursor.

At most one run at a time: a lease in the settings table, a conditional write that expires
(a reader that dies holding it delays the next run by its lease, no more). The Lambda also
has a reserved concurrency of 1; the lease is what holds when a reload meets a tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mailproxy.domain.bounces import MailboxCursor
from mailproxy.domain.clock import Clock
from mailproxy.domain.instance import (
    BounceRunRecord,
    InstanceSettings,
    StoredInstance,
    bounce_due,
    missing_when_enabled,
)
from mailproxy.secret_box import bounce_password_context
from mailproxy.service.bounces import RECENT_SECONDS, BounceRun, BounceRunSettings, run_once
from mailproxy.service.ports import BounceEvents, MailboxOpener, MessageLookup, Opener


class ReaderStore(Protocol):
    def get_instance_settings(self) -> StoredInstance | None: ...
    def last_bounce_run(self, mailbox_key: str) -> BounceRunRecord | None: ...
    def record_bounce_run(self, mailbox_key: str, at: float, error: str | None = None) -> None: ...
    def take_bounce_lease(self, owner: str, now: float, until: float) -> bool: ...
    def release_bounce_lease(self, owner: str) -> None: ...
    def load_bounce_cursor(self, mailbox_key: str) -> MailboxCursor | None: ...
    def save_bounce_cursor(self, mailbox_key: str, cursor: MailboxCursor) -> None: ...


class ReaderState(StrEnum):
    DISABLED = "disabled"  # bounce_enabled is false
    INCOMPLETE = "incomplete"  # enabled, but host, user or password missing
    NOT_DUE = "not_due"  # the last run was less than bounce_poll_interval ago
    BUSY = "busy"  # another run holds the lease
    RAN = "ran"


@dataclass(frozen=True)
class ReaderOutcome:
    state: ReaderState
    run: BounceRun | None = None
    # The mailbox's last run failed (this one, or the last one when this was not due): what
    # the "reader failing" alarm watches. None when disabled.
    failing: bool | None = None


@dataclass(frozen=True)
class ReaderContext:
    store: ReaderStore
    secrets: Opener
    # The mailbox of these settings, with this password (delivery/imap_mailbox.py).
    mailbox_for: Callable[[InstanceSettings, str], MailboxOpener]
    # A MessageLookup for one run, looking back to the given time.
    lookup_for: Callable[[float], MessageLookup]
    events: BounceEvents
    clock: Clock
    owner: str  # who takes the lease (the invocation's request id)
    lease_seconds: float


class _Cursors:
    def __init__(self, store: ReaderStore) -> None:
        self._store = store

    def load(self, mailbox_key: str) -> MailboxCursor | None:
        return self._store.load_bounce_cursor(mailbox_key)

    def save(self, mailbox_key: str, cursor: MailboxCursor) -> None:
        self._store.save_bounce_cursor(mailbox_key, cursor)


def read_bounces(ctx: ReaderContext, force: bool = False) -> ReaderOutcome:
    """`force`: a reload (POST /instance/reload-bounce) runs now, due or not."""
    stored = ctx.store.get_instance_settings()
    if stored is None or not stored.settings.bounce_enabled:
        return ReaderOutcome(ReaderState.DISABLED)
    settings = stored.settings
    if missing_when_enabled(settings, has_password=stored.sealed_password is not None):
        return ReaderOutcome(ReaderState.INCOMPLETE, failing=True)
    key = settings.mailbox_key
    now = ctx.clock()
    last = ctx.store.last_bounce_run(key)
    if not force and not bounce_due(last.at if last else None, settings.bounce_poll_interval, now):
        return ReaderOutcome(ReaderState.NOT_DUE, failing=bool(last and last.error))
    if not ctx.store.take_bounce_lease(ctx.owner, now, now + ctx.lease_seconds):
        return ReaderOutcome(ReaderState.BUSY, failing=bool(last and last.error))
    try:
        password = ctx.secrets.open(stored.sealed_password or "", bounce_password_context())
        run = run_once(
            BounceRunSettings(mailbox_key=key),
            ctx.mailbox_for(settings, password),
            ctx.lookup_for(now - RECENT_SECONDS),
            ctx.events,
            _Cursors(ctx.store),
            ctx.clock,
        )
        ctx.store.record_bounce_run(key, now, run.error)
    finally:
        ctx.store.release_bounce_lease(ctx.owner)
    return ReaderOutcome(ReaderState.RAN, run, failing=run.error is not None)
