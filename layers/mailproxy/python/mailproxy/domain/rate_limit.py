"""Per-account sending limits: epoch-aligned windows, and what to do over a limit.

A send takes one slot in every window the account limits; the store counts slots with
conditional writes (all windows of one send in one transaction). These functions only decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailproxy.domain.account import Account

RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
# Counter items outlive their window a little, then DynamoDB's TTL removes them.
COUNTER_TTL_MARGIN_SECONDS = 3600


@dataclass(frozen=True)
class Window:
    name: Literal["second", "minute", "hour", "day"]
    seconds: int
    limit: int

    def start(self, now: float) -> int:
        """Windows are aligned to the epoch: minutes on :00, days on UTC midnight."""
        return int(now // self.seconds) * self.seconds

    def end(self, now: float) -> int:
        return self.start(now) + self.seconds

    def counter_key(self, tenant_id: str, account_id: str, now: float) -> str:
        return f"{tenant_id}#{account_id}#{self.name}#{self.start(now)}"

    def expires_at(self, now: float) -> int:
        return self.end(now) + COUNTER_TTL_MARGIN_SECONDS


def windows_for(account: Account) -> list[Window]:
    """The windows this account limits (a null or 0 limit is no limit)."""
    candidates: list[tuple[Literal["second", "minute", "hour", "day"], int, int | None]] = [
        ("second", 1, account.limit_per_second),
        ("minute", 60, account.limit_per_minute),
        ("hour", 3600, account.limit_per_hour),
        ("day", 86400, account.limit_per_day),
    ]
    return [Window(name, seconds, limit) for name, seconds, limit in candidates if limit]


@dataclass(frozen=True)
class DeferUntil:
    due_ts: int
    reason: str


@dataclass(frozen=True)
class RejectOverLimit:
    reason: str = RATE_LIMIT_EXCEEDED


def over_limit(account: Account, full: list[Window], now: float) -> DeferUntil | RejectOverLimit:
    """A send found these windows full: wait for the last of them to end (deferral is not a
    retry), or fail, as the account says."""
    if account.limit_behavior == "reject":
        return RejectOverLimit()
    latest = max(full, key=lambda window: window.end(now))
    return DeferUntil(
        max(window.end(now) for window in full),
        f"{RATE_LIMIT_EXCEEDED}: limit_per_{latest.name} {latest.limit}",
    )
