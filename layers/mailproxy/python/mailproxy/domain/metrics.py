"""Delivery counters, as the store keeps them (mailproxy.prometheus renders GET /metrics)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum


class Count(StrEnum):
    SUBMITTED = "submitted"  # accepted new messages (for the pending gauge)
    SENT = "sent"
    ERRORS = "errors"
    DEFERRED = "deferred"
    RATE_LIMITED = "rate_limited"
    AMBIGUOUS = "ambiguous"
    REMOVED = "removed"  # deleted before they were sent or failed (for the pending gauge)


# (tenant_id, account_id, what) -> how many
Counts = Counter[tuple[str, str, Count]]


@dataclass(frozen=True)
class Series:
    tenant_id: str
    account_id: str
    count: Count
    value: int
