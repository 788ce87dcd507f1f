"""After a failed attempt: retry on the schedule, or fail."""

from __future__ import annotations

import pytest

from mailproxy.domain.errors import DeliveryError
from mailproxy.domain.retry import (
    RETRY_DELAYS_SECONDS,
    Fail,
    RetryAt,
    after_failure,
    is_temporary_reply,
)

NOW = 1_700_000_000.0


def test_a_permanent_failure_fails_at_once_with_the_smtp_code() -> None:
    # Given a 550 refusal / When decided / Then the message fails, whatever retries are left
    error = DeliveryError(
        "All recipients refused (a@x.test): No such user", temporary=False, smtp_code=550
    )
    decision = after_failure(error, retries_done=0, now=NOW)
    assert decision == Fail("All recipients refused (a@x.test): No such user (SMTP 550)")
    assert isinstance(decision, Fail)
    assert decision.reason.endswith(" (SMTP 550)")


def test_a_permanent_failure_without_a_code_keeps_its_reason() -> None:
    error = DeliveryError("Attachment fetch failed for a.pdf: gone", temporary=False)
    assert after_failure(error, 0, NOW) == Fail("Attachment fetch failed for a.pdf: gone")


@pytest.mark.parametrize(
    ("retries_done", "delay"), [(0, 60), (1, 300), (2, 900), (3, 3600), (4, 7200)]
)
def test_a_temporary_failure_is_retried_on_the_schedule(retries_done: int, delay: int) -> None:
    # Given a 451 after `retries_done` retries / When decided / Then retry after the next delay
    error = DeliveryError("Message refused: try later", temporary=True, smtp_code=451)
    assert after_failure(error, retries_done, NOW) == RetryAt(
        NOW + delay, "Message refused: try later (SMTP 451)"
    )


def test_after_five_retries_the_message_fails_with_the_last_error() -> None:
    # Given a temporary failure after the fifth retry / When decided / Then it fails
    error = DeliveryError("Connection refused", temporary=True)
    decision = after_failure(error, retries_done=5, now=NOW)
    assert decision == Fail("Max retries (5) exceeded: Connection refused")


def test_the_schedule_is_data() -> None:
    assert RETRY_DELAYS_SECONDS == (60, 300, 900, 3600, 7200)
    error = DeliveryError("busy", temporary=True, smtp_code=421)
    assert after_failure(error, 0, NOW, schedule=(5,)) == RetryAt(NOW + 5, "busy (SMTP 421)")
    assert after_failure(error, 1, NOW, schedule=(5,)) == Fail(
        "Max retries (1) exceeded: busy (SMTP 421)"
    )


@pytest.mark.parametrize(
    ("code", "temporary"),
    [(421, True), (450, True), (499, True), (500, False), (550, False), (554, False), (250, False)],
)
def test_4xx_replies_are_temporary(code: int, temporary: bool) -> None:
    assert is_temporary_reply(code) is temporary


def test_error_text_names_the_smtp_code_only_when_there_is_one() -> None:
    assert DeliveryError("x", temporary=True).text == "x"
    assert DeliveryError("x", temporary=True, smtp_code=451).text == "x (SMTP 451)"
