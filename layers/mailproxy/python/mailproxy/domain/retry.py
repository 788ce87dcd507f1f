"""Retry or fail: the decision after a failed delivery attempt, as data and pure functions."""

from __future__ import annotations

from dataclasses import dataclass

from mailproxy.domain.errors import DeliveryError

RETRY_DELAYS_SECONDS: tuple[int, ...] = (60, 300, 900, 3600, 7200)


@dataclass(frozen=True)
class RetryAt:
    due_ts: float
    reason: str


@dataclass(frozen=True)
class Fail:
    reason: str


def after_failure(
    error: DeliveryError,
    retries_done: int,
    now: float,
    schedule: tuple[int, ...] = RETRY_DELAYS_SECONDS,
) -> RetryAt | Fail:
    """A temporary failure is retried on the schedule until it runs out; anything else fails."""
    if not error.temporary:
        return Fail(error.text)
    if retries_done >= len(schedule):
        return Fail(f"Max retries ({len(schedule)}) exceeded: {error.text}")
    return RetryAt(now + schedule[retries_done], error.text)


# SMTP reply codes: 4xx is a transient condition (RFC 5321 4.2.1), 5xx is permanent.
def is_temporary_reply(code: int) -> bool:
    return 400 <= code < 500
