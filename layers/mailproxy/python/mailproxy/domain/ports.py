"""The shapes the use cases and the store exchange: what to write, what a claim found.

Plain data, so the use cases (and the handlers importing them) need no persistence library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mailproxy.domain.account import StoredAccount
from mailproxy.domain.record import MessageEvent, MessageState
from mailproxy.domain.status import MessageStatus
from mailproxy.domain.tenant import Tenant

if TYPE_CHECKING:
    # Only named in annotations: the api's cold start need not build the rate-limit types.
    from mailproxy.domain.rate_limit import SlotRelease

DeleteOutcome = Literal["removed", "not_found", "in_flight"]


@dataclass(frozen=True)
class SubmissionWrite:
    state: MessageState
    payload: dict[str, Any]
    # None: the id must be new; else the message must still wait under this ticket.
    expected_ticket: str | None
    event: MessageEvent | None = None


@dataclass(frozen=True)
class StoredBody:
    version: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Claimed:
    claim_token: str
    # The previous owner's lease ran out while it was sending: it may have delivered.
    after_expired_lease: bool = False


@dataclass(frozen=True)
class NotClaimable:
    pass


@dataclass(frozen=True)
class CountersChanged:
    """The message was claimable, but these rate-limit items are no longer as the sender
    read them (another sender took a slot or started a sub-bucket): nothing was written;
    read them again and decide again."""

    keys: list[str] = field(default_factory=list)


ClaimResult = Claimed | NotClaimable | CountersChanged


@dataclass(frozen=True)
class ClaimRequest:
    """One message of a batch claim: claimable with this ticket and body while it waits and
    is due (a takeover after an expired lease is claimed alone)."""

    tenant_id: str
    message_id: str
    ticket: str
    body_version: str | None
    claim_token: str


@dataclass(frozen=True)
class BatchClaimed:
    """Every message of the batch is claimed, with every slot."""


@dataclass(frozen=True)
class BatchRefused:
    """Nothing was written: these requests (positions) were not claimable, and these
    rate-limit items were no longer as read."""

    not_claimable: tuple[int, ...] = ()
    changed_keys: tuple[str, ...] = ()


BatchClaimResult = BatchClaimed | BatchRefused


@dataclass(frozen=True)
class Sent:
    """Delivered; `refused`: the recipients the server refused, by address."""

    refused: dict[str, str] | None = None


@dataclass(frozen=True)
class Failed:
    """Failed for good: the message ends in `error`."""

    error: str


@dataclass(frozen=True)
class Retry:
    """Failed for now: tried again at `due_ts` under a new ticket, its retries counted; the
    slots it gives back (none when the mail may have reached the server)."""

    error: str
    due_ts: float
    new_ticket: str
    retries: int
    release: list[SlotRelease] = field(default_factory=list)
    watch_at: float | None = None


@dataclass(frozen=True)
class HandedBack:
    """Given back unsent (no time left to send it): waiting again now, under a new ticket,
    with its slots given back. Not a retry: nothing failed."""

    due_ts: float
    new_ticket: str
    release: list[SlotRelease] = field(default_factory=list)
    watch_at: float | None = None


AttemptResult = Sent | Failed | Retry | HandedBack


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt's outcome writes: the message's new state (by the kind of result),
    its events, and the rate-limit slots it gives back; written only while the attempt owns
    the message."""

    tenant_id: str
    message_id: str
    claim_token: str
    now: float
    events: list[MessageEvent]
    result: AttemptResult

    @property
    def status(self) -> MessageStatus:
        match self.result:
            case Sent():
                return MessageStatus.SENT
            case Failed():
                return MessageStatus.ERROR
            case Retry():
                return MessageStatus.DEFERRED
            case HandedBack():
                return MessageStatus.PENDING

    @property
    def release(self) -> list[SlotRelease]:
        return self.result.release if isinstance(self.result, Retry | HandedBack) else []

    @property
    def watch_at(self) -> float | None:
        """When the scheduler looks at the message again; None takes it off the watch."""
        return self.result.watch_at if isinstance(self.result, Retry | HandedBack) else None


@dataclass
class BatchRead:
    """What a sender reads before a batch, found items only: a key absent has no item."""

    tenants: dict[str, Tenant] = field(default_factory=dict)
    accounts: dict[tuple[str, str], StoredAccount] = field(default_factory=dict)
    bodies: dict[tuple[str, str], StoredBody] = field(default_factory=dict)
