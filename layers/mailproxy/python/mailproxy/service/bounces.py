"""The bounce reader's run: read what is new in the bounce mailbox, recognize the delivery
failure notifications, find the message each is about, record a `bounce` event on it (the
reporter sends it to the tenant like any other event), and move what was handled out of the
folder.

Crash safety, in the order of the writes for each mail: the events first (idempotent: an
event per failed recipient and code, whatever the notification's copy), then the mail moved
out (or marked unmatched), then the cursor. A crash before the cursor reads the mail again
next run; its events are found already written (counted as duplicates) and it is moved then.

The ports are declared here for now; they belong with the others (domain/ports.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailproxy.domain.bounces import (
    Bounce,
    BounceType,
    MailboxCursor,
    MailboxMessage,
    NotABounce,
    SentMessage,
    bounce_event,
    bounce_key,
    bounce_ts_of,
    consistent,
    latest_for_recipient,
    parse_notification,
)
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import MailboxFailure, StorageFailure
from mailproxy.service.ports import (
    BounceEvents,
    BounceMailbox,
    CursorStore,
    MailboxOpener,
    MessageLookup,
)

# flufl.bounce logs a line at INFO for each of its 17 detectors on every mail: its errors
# (a detector tripping on a malformed mail) are all that is worth a log line.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

# How far back the last resort (matching by recipient) looks: bounces come back within
# minutes, a few within the retry period of the remote MTA (Postfix: 5 days).
RECENT_SECONDS = 7 * 24 * 3600
# Mails handled in one run; the next run goes on from the cursor.
MAX_MESSAGES_PER_RUN = 500
# The remote MTA's clock may be behind ours: a message sent this much after the
# notification's Date may still be the one it is about.
CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True)
class BounceRunSettings:
    # Names the cursor: the host, user and folder, so another mailbox starts afresh.
    mailbox_key: str
    recent_seconds: float = RECENT_SECONDS
    max_messages: int = MAX_MESSAGES_PER_RUN


@dataclass
class BounceRun:
    """What one run did, for its log line and the metrics (bounces by type, unmatched)."""

    read: int = 0  # mails read from the mailbox
    hard: int = 0  # bounce events written, by type
    soft: int = 0
    unmatched: int = 0  # notifications that matched no message: kept in the mailbox
    duplicates: int = 0  # failures already recorded (a notification seen twice)
    not_bounces: int = 0  # mail that is no failure notification: left as it is
    # (tenant_id, bounce type) -> events written: the bounces metric's labels.
    by_tenant: Counter[tuple[str, BounceType]] = field(default_factory=Counter)
    unmatched_uids: list[int] = field(default_factory=list)
    # The run stopped at max_messages: there may be more.
    more: bool = False
    # The mailbox or the store failed; the run stopped there (the next one goes on).
    error: str | None = None


def run_once(
    settings: BounceRunSettings,
    mailbox_opener: MailboxOpener,
    lookup: MessageLookup,
    events: BounceEvents,
    cursor_store: CursorStore,
    clock: Clock,
) -> BounceRun:
    """One pass over the bounce mailbox, one session reused for all of it."""
    result = BounceRun()
    try:
        cursor = cursor_store.load(settings.mailbox_key)
        with mailbox_opener() as mailbox:
            uidvalidity = mailbox.uidvalidity
            if cursor is not None and cursor.uidvalidity != uidvalidity:
                cursor = None  # the old UIDs mean nothing now
            for message in mailbox.new_messages(cursor):
                if result.read >= settings.max_messages:
                    result.more = True
                    break
                result.read += 1
                _handle(message, settings, mailbox, lookup, events, clock, result)
                cursor = MailboxCursor(uidvalidity, message.uid)
                cursor_store.save(settings.mailbox_key, cursor)
            if cursor is None:
                # Nothing new under a new UIDVALIDITY: keep it, so the next run reads only
                # what comes after.
                cursor_store.save(settings.mailbox_key, MailboxCursor(uidvalidity, 0))
    except (MailboxFailure, StorageFailure) as error:
        result.error = error.detail
    return result


def _handle(
    message: MailboxMessage,
    settings: BounceRunSettings,
    mailbox: BounceMailbox,
    lookup: MessageLookup,
    events: BounceEvents,
    clock: Clock,
    result: BounceRun,
) -> None:
    try:
        parsed = parse_notification(message.raw)
    except Exception:
        # A mail that breaks the parser must not stop the mailbox: it is kept, as unmatched.
        parsed = None
    if isinstance(parsed, NotABounce):
        # An auto-reply or a person's answer: left unseen, for a person.
        result.not_bounces += 1
        return
    now = clock()
    sent = _match(parsed, lookup, now - settings.recent_seconds, now) if parsed else None
    if parsed is None or sent is None:
        mailbox.mark_unmatched(message.uid)
        result.unmatched += 1
        result.unmatched_uids.append(message.uid)
        return
    at = bounce_ts_of(parsed, now)
    for failure in parsed.failures:
        event = bounce_event(sent.id, failure, at)
        if events.record_bounce(sent, event, bounce_key(failure.recipient, failure.code)):
            if failure.bounce_type is BounceType.HARD:
                result.hard += 1
            else:
                result.soft += 1
            result.by_tenant[(sent.tenant_id, failure.bounce_type)] += 1
        else:
            result.duplicates += 1
    mailbox.mark_processed(message.uid)


def _match(bounce: Bounce, lookup: MessageLookup, since: float, now: float) -> SentMessage | None:
    """X-Genro-Mail-ID, else Message-ID, else the failed recipient among recent messages.
    A key that finds several messages (or one that the notification contradicts) gives way
    to the next; none found is None: never a guess across tenants."""
    if bounce.mail_id:
        found = _unique(lookup.by_mail_id(bounce.mail_id), bounce)
        if found is not None:
            return found
    if bounce.message_id:
        found = _unique(lookup.by_message_id(bounce.message_id), bounce)
        if found is not None:
            return found
    before = bounce.notified_at if bounce.notified_at is not None else now
    candidates: dict[tuple[str, str], SentMessage] = {}
    for recipient in dict.fromkeys(bounce.recipients + bounce.returned_recipients):
        for candidate in lookup.by_recipient(recipient, since):
            candidates[(candidate.tenant_id, candidate.id)] = candidate
    return latest_for_recipient(list(candidates.values()), before + CLOCK_SKEW_SECONDS)


def _unique(candidates: Sequence[SentMessage], bounce: Bounce) -> SentMessage | None:
    fitting = {(c.tenant_id, c.id): c for c in candidates if consistent(c, bounce)}
    return next(iter(fitting.values())) if len(fitting) == 1 else None
