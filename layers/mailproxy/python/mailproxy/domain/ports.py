"""The shapes the use cases and the store exchange: what to write, what a claim found.

Plain data, so the use cases (and the handlers importing them) need no persistence library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mailproxy.domain.record import MessageEvent, MessageState

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
