"""What every part of the store shares: the bound models and how a failed condition looks."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError

from mailproxy.store.models import Models

CONDITION_FAILED = {"ConditionalCheckFailedException", "TransactionCanceledException"}
BATCH_GET_LIMIT = 100


def is_condition_failure(error: PutError | UpdateError | DeleteError | TransactWriteError) -> bool:
    return error.cause_response_code in CONDITION_FAILED


def failed_items(error: TransactWriteError) -> list[int]:
    """Positions of the transaction's items whose condition failed."""
    reasons: list[Any] = list(error.cancellation_reasons or [])
    return [
        index
        for index, reason in enumerate(reasons)
        if reason is not None and getattr(reason, "code", None) == "ConditionalCheckFailed"
    ]


class Records:
    """Base of the store's parts; `_m` holds the pynamodb models of this environment."""

    _m: Models
