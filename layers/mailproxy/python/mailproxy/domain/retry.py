"""Retry or fail: the decision after a failed delivery attempt, as data and pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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


class FailureKind(StrEnum):
    TRANSIENT_REPLY = "transient_reply"  # 4xx, 421 included (RFC 5321 4.2.1)
    PERMANENT_REPLY = "permanent_reply"  # 5xx, at any stage, RCPT included
    AUTHENTICATION = "authentication"
    UNTRUSTED_CERTIFICATE = "untrusted_certificate"
    MISSING_EXTENSION = "missing_extension"  # e.g. STARTTLS the account requires
    DISCONNECTED = "disconnected"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    RESET = "reset"
    NAME_RESOLUTION = "name_resolution"
    NETWORK = "network"
    UNKNOWN = "unknown"


# The classification, as data: may trying again later succeed?
IS_TEMPORARY: dict[FailureKind, bool] = {
    FailureKind.TRANSIENT_REPLY: True,
    FailureKind.PERMANENT_REPLY: False,
    # Bad credentials or an untrusted certificate do not get better by waiting.
    FailureKind.AUTHENTICATION: False,
    FailureKind.UNTRUSTED_CERTIFICATE: False,
    FailureKind.MISSING_EXTENSION: False,
    FailureKind.DISCONNECTED: True,
    FailureKind.TIMEOUT: True,
    FailureKind.REFUSED: True,
    FailureKind.RESET: True,
    # A DNS failure is more often a passing outage than a wrong host name.
    FailureKind.NAME_RESOLUTION: True,
    FailureKind.NETWORK: True,
    FailureKind.UNKNOWN: True,
}


def reply_kind(code: int) -> FailureKind:
    """SMTP reply codes: 4xx is a transient condition, 5xx a permanent one; anything else
    (an unreadable reply) is treated as permanent, since repeating it repeats the garble."""
    return FailureKind.TRANSIENT_REPLY if 400 <= code < 500 else FailureKind.PERMANENT_REPLY


def is_temporary_reply(code: int) -> bool:
    return IS_TEMPORARY[reply_kind(code)]
