"""Errors the domain speaks in; adapters translate SDK and SMTP failures into these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field, located as pydantic locates it (e.g. ("body", "messages", 0, "to"))."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"


class InvalidRequest(Exception):
    """The request as a whole is refused (422), naming the fields at fault."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems))
        self.problems = tuple(problems)


class NotFound(Exception):
    """The thing the request names does not exist (404)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PayloadTooLarge(Exception):
    """The request or one of its messages is over a documented size limit (413)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(Exception):
    """A well-formed request that cannot be carried out (400)."""

    def __init__(self, detail: object) -> None:
        super().__init__(str(detail))
        self.detail = detail


class StaleWrite(Exception):
    """The stored item changed since the writer read it; the writer's decision no longer
    applies (another request, or a newer owner of the message, decided first)."""


class DeliveryError(Exception):
    """A delivery attempt failed; `temporary` says whether trying again may succeed."""

    def __init__(self, reason: str, *, temporary: bool, smtp_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary
        self.smtp_code = smtp_code

    @property
    def text(self) -> str:
        """The error as the client sees it: the reason, and the server's code when it gave one."""
        if self.smtp_code is None:
            return self.reason
        return f"{self.reason} (SMTP {self.smtp_code})"


class AmbiguousDelivery(DeliveryError):
    """The connection died after the message was handed over, before the server answered."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, temporary=True)


class StorageFailure(Exception):
    """S3 or DynamoDB refused or failed a request (throttled, unreachable, denied); the
    adapter says what, without the SDK's types. Trying again later may succeed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MailboxFailure(Exception):
    """The bounce mailbox (IMAP) refused or failed: unreachable, timed out, TLS not verified,
    login refused, a command answered NO or BAD. The run stops; the next one tries again from
    the cursor, so nothing is lost."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
