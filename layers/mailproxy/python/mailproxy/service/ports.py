"""The ports: every Protocol a use case in service/ needs from the world, declared once.

Each use case asks for the narrowest store it uses (SubmissionStore, DeliveryStore, ...);
the one DynamoDB store (store/) provides them all, and tests/support/fakes.py provides them
in memory. The capabilities several use cases share (Queues, Opener, Sealer) are declared
here once and named by each.

Here, not in domain/ports.py: these name types from outside the pure domain (the queued
Reference and Enqueue of mailproxy.queueing), and a use case's needs belong to the use
cases. domain/ports.py keeps the plain data those Protocols exchange (what a claim found,
what an outcome writes), which the store imports without importing any use case.

Every name below is imported for type checking only: importing this module costs a
Lambda's cold start nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mailproxy.domain.account import Account, StoredAccount
    from mailproxy.domain.bounces import MailboxCursor, MailboxMessage, SentMessage
    from mailproxy.domain.command_log import CommandQuery, CommandRecord
    from mailproxy.domain.instance import StoredInstance
    from mailproxy.domain.large_files import FileLink
    from mailproxy.domain.metrics import Counts, Series
    from mailproxy.domain.ports import (
        AttemptOutcome,
        BatchClaimResult,
        BatchRead,
        ClaimRequest,
        ClaimResult,
        DeleteOutcome,
        StoredBody,
        SubmissionWrite,
    )
    from mailproxy.domain.rate_limit import SlotWrite, WindowCounts
    from mailproxy.domain.record import MessageEvent, MessageState
    from mailproxy.domain.reporting import SyncState
    from mailproxy.domain.tenant import Tenant
    from mailproxy.queueing import Enqueue, Reference


# -- capabilities shared by several use cases ------------------------------------------------


class Queues(Protocol):
    """The priority queues: references in, each on its priority's queue with its delay."""

    def send(self, items: list[Enqueue]) -> None: ...


class Sealer(Protocol):
    """Encrypts a secret for storage, bound to its context (whose account, whose tenant)."""

    def seal(self, plaintext: str, context: dict[str, str]) -> str: ...


class Opener(Protocol):
    """Decrypts what a Sealer sealed, given the same context."""

    def open(self, sealed: str, context: dict[str, str]) -> str: ...


class Transport(Protocol):
    """SMTP: one message to its recipients through an account; the recipients the server
    refused (the others took it), by address."""

    def send(
        self, account: Account, envelope_from: str, recipients: list[str], message: bytes
    ) -> dict[str, str]: ...


class Presigner(Protocol):
    def presigned_get(
        self, bucket: str, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> str: ...


class FileVault(Protocol):
    """Where a large attachment is stored in place of being mailed."""

    def put(
        self, bucket: str, key: str, content: bytes, content_type: str, filename: str
    ) -> None: ...


# -- tenants and accounts --------------------------------------------------------------------


class TenantStore(Protocol):
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...
    def list_tenants(self) -> list[Tenant]: ...
    def create_tenant(self, tenant: Tenant) -> bool: ...
    def patch_tenant(self, tenant_id: str, patch: dict[str, Any], now: float) -> bool: ...
    def delete_tenant(self, tenant_id: str) -> bool: ...


class KeyStore(Protocol):
    def tenant_id_for_key(self, key_hash: str) -> str | None: ...
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...


class AccountStore(Protocol):
    def put_account(
        self, account: Account, sealed_password: str | None, keep_password: bool, now: float
    ) -> None: ...
    def get_account(self, tenant_id: str, account_id: str) -> StoredAccount | None: ...
    def tenants_with_account(self, account_id: str) -> list[str]: ...
    def list_tenants(self) -> list[Tenant]: ...
    def create_tenant(self, tenant: Tenant) -> bool: ...
    def list_accounts(self, tenant_id: str | None) -> list[StoredAccount]: ...
    def delete_account(self, tenant_id: str, account_id: str) -> bool: ...


# -- messages in: submission, listing, housekeeping -------------------------------------------


class SubmissionStore(Protocol):
    def get_account(self, tenant_id: str, account_id: str) -> StoredAccount | None: ...
    def tenants_with_account(self, account_id: str) -> list[str]: ...
    def get_states(self, tenant_id: str, ids: list[str]) -> dict[str, MessageState]: ...
    def save_submissions(self, writes: list[SubmissionWrite]) -> set[str]: ...
    def confirm_queued(self, references: list[Reference]) -> None: ...
    def add_counts(self, counts: Counts) -> None: ...


class ListingStore(Protocol):
    def list_states(self, tenant_id: str | None) -> list[MessageState]: ...
    def get_states(self, tenant_id: str, ids: list[str]) -> dict[str, MessageState]: ...
    def get_payloads(self, tenant_id: str, ids: list[str]) -> dict[str, dict[str, Any]]: ...
    def events_by_message(self, tenant_id: str) -> dict[str, list[MessageEvent]]: ...


class MetricsStore(Protocol):
    def all_counts(self) -> list[Series]: ...
    def list_tenants(self) -> list[Tenant]: ...
    def list_accounts(self, tenant_id: str | None) -> list[StoredAccount]: ...


class HousekeepingStore(Protocol):
    def get_states(self, tenant_id: str, ids: list[str]) -> dict[str, MessageState]: ...
    def add_counts(self, counts: Counts) -> None: ...
    def delete_message(self, tenant_id: str, message_id: str, now: float) -> DeleteOutcome: ...
    def finished_before(self, tenant_id: str, before_ts: float) -> list[MessageState]: ...
    def events_by_message(self, tenant_id: str) -> dict[str, list[MessageEvent]]: ...
    def remove_finished(self, tenant_id: str, message_id: str, event_ids: list[str]) -> bool: ...


# -- scheduling and suspension ---------------------------------------------------------------


class TakesDue(Protocol):
    def take_due(self, state: MessageState, watch_at: float) -> bool: ...


class SchedulingStore(TakesDue, Protocol):
    def due_messages(self, shard: str, until: float, limit: int) -> list[MessageState]: ...
    def held_messages(self, tenant_id: str, limit: int = 1000) -> list[MessageState]: ...


class SuspensionStore(SchedulingStore, Protocol):
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...
    def patch_tenant(self, tenant_id: str, patch: dict[str, Any], now: float) -> bool: ...
    def count_active(self, tenant_id: str, batch_code: str | None = None) -> int: ...


# -- delivery --------------------------------------------------------------------------------


class DeliveryStore(Protocol):
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...
    def get_bodies(self, tenant_id: str, ids: Iterable[str]) -> dict[str, StoredBody]: ...
    def read_batch(
        self,
        tenant_ids: Iterable[str],
        accounts: Iterable[tuple[str, str]],
        bodies: Iterable[tuple[str, str]],
    ) -> BatchRead: ...
    def get_account(self, tenant_id: str, account_id: str) -> StoredAccount | None: ...
    def get_state(self, tenant_id: str, message_id: str) -> MessageState | None: ...
    def get_window_counts(self, keys: Iterable[str]) -> dict[str, WindowCounts]: ...
    def hold(
        self, tenant_id: str, message_id: str, ticket: str, new_ticket: str, now: float
    ) -> bool: ...
    def take_due(self, state: MessageState, watch_at: float) -> bool: ...
    def claim(
        self,
        tenant_id: str,
        message_id: str,
        ticket: str,
        body_version: str | None,
        *,
        now: float,
        lease_seconds: int,
        claim_token: str,
        charges: list[SlotWrite],
        after_expired_lease: bool = False,
    ) -> ClaimResult: ...
    def claim_many(
        self,
        requests: list[ClaimRequest],
        charges: list[SlotWrite],
        *,
        now: float,
        lease_seconds: int,
    ) -> BatchClaimResult: ...
    def requeue_waiting(
        self,
        tenant_id: str,
        message_id: str,
        old_ticket: str,
        new_ticket: str,
        *,
        now: float,
        due_ts: float | None = None,
        events: list[MessageEvent] | None = None,
        watch_at: float | None = None,
    ) -> bool: ...
    def fail_waiting(
        self,
        tenant_id: str,
        message_id: str,
        ticket: str,
        *,
        now: float,
        events: list[MessageEvent],
    ) -> bool: ...
    def finish_attempt(self, outcome: AttemptOutcome) -> None:
        """Write the outcome while its attempt owns the message; StaleWrite when not."""
        ...

    def finish_many(self, outcomes: list[AttemptOutcome]) -> set[int]:
        """Write these outcomes; the positions of the stale ones (nothing of theirs written)."""
        ...


class FileLinkStore(Protocol):
    def put_file_link(self, token_hash: str, link: FileLink) -> bool: ...


class FileLinkReader(Protocol):
    def get_file_link(self, token_hash: str) -> FileLink | None: ...
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...


# -- delivery reports ------------------------------------------------------------------------


class ReportingStore(Protocol):
    def tenants_for_sync(
        self, tenant_ids: Sequence[str] | None = None
    ) -> list[tuple[Tenant, SyncState]]: ...
    def sync_state(self, tenant_id: str) -> SyncState | None: ...
    def has_unreported(self, tenant_id: str) -> bool: ...
    def unreported_events(self, tenant_id: str, limit: int = ...) -> list[MessageEvent]: ...
    def mark_reported(self, tenant_id: str, events: Sequence[MessageEvent], now: float) -> int: ...
    def acquire_sync_lease(self, tenant_id: str, now: float, seconds: float) -> bool: ...
    def record_sync(
        self,
        tenant_id: str,
        now: float,
        *,
        ok: bool,
        next_sync_after: float | None,
        failures: int,
        retry_after: float | None,
        lease_until: float | None = None,
    ) -> None: ...


# -- the bounce reader (service/bounces.py) ---------------------------------------------------


class BounceMailbox(Protocol):
    """The bounce mailbox, open for one run (delivery/imap_mailbox.py's ImapMailbox)."""

    @property
    def uidvalidity(self) -> int: ...

    def new_messages(self, cursor: MailboxCursor | None) -> Iterable[MailboxMessage]:
        """Above the cursor while its UIDVALIDITY holds; else all that is in the folder (but
        what is marked unmatched, where the server can say so). In UID order."""
        ...

    def mark_processed(self, uid: int) -> None:
        """Out of the folder, so it is never read again."""
        ...

    def mark_unmatched(self, uid: int) -> None:
        """Kept in the folder, seen, for a person to look at."""
        ...


# Opens (connects, logs in, selects) one mailbox session for the run; closed at its end.
MailboxOpener = Callable[[], AbstractContextManager["BounceMailbox"]]


class MessageLookup(Protocol):
    """Finds the sent message a notification is about. Message ids are unique per tenant
    only, and the notification does not say the tenant: every method looks across tenants
    and may find several; the use case decides between them.

    A store adapter needs: the messages by id across tenants, by the Message-ID header they
    were sent with (the default Message-ID is a hash of (tenant, id) and cannot be reversed),
    and by recipient among those sent since a time. The DynamoDB one (store/bounces.py) adds
    no index for it: by key per tenant, and among each tenant's recent sent events, under a
    read budget; its docstring says what that leaves out."""

    def by_mail_id(self, mail_id: str) -> Sequence[SentMessage]: ...

    def by_message_id(self, message_id: str) -> Sequence[SentMessage]: ...

    def by_recipient(self, recipient: str, since: float) -> Sequence[SentMessage]: ...


class BounceEvents(Protocol):
    def record_bounce(self, message: SentMessage, event: MessageEvent, dedupe_key: str) -> bool:
        """Writes the event in the message's history, unreported (so the reporter sends it),
        unless this message already has a bounce recorded under `dedupe_key` (the same
        recipient and code: bounce_key); True when it wrote. Writing the event and the key
        is one conditional write (a transaction), so a crash cannot leave one without the
        other."""
        ...


class CursorStore(Protocol):
    """Where the last run stopped, per mailbox (one item; DynamoDB in production)."""

    def load(self, mailbox_key: str) -> MailboxCursor | None: ...

    def save(self, mailbox_key: str, cursor: MailboxCursor) -> None: ...


# -- the instance settings --------------------------------------------------------------------


class InstanceStore(Protocol):
    def get_instance_settings(self) -> StoredInstance | None: ...

    def put_instance_settings(
        self, stored: StoredInstance, expected_updated_at: float | None
    ) -> None:
        """Written only if the stored settings are still those of `expected_updated_at`
        (None: none stored); StaleWrite otherwise."""
        ...


class BounceTrigger(Protocol):
    """Asks the bounce reader for a run now, with the settings as they are stored (on AWS an
    asynchronous invoke of its Lambda; in local mode a call in a thread). Returns at once."""

    def trigger(self) -> None: ...


# -- the command log (service/command_log.py) ----------------------------------------------


class CommandLog(Protocol):
    def put_command(self, record: CommandRecord) -> bool:
        """False (nothing written) when the record's id is taken already."""
        ...

    def commands(
        self, query: CommandQuery, *, now: float, retention_seconds: float, newest_first: bool
    ) -> list[CommandRecord]: ...
