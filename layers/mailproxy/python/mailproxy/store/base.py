"""What every part of the store shares: the bound models, transactions that survive
contention, and how a failed condition looks."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import (
    DeleteError,
    PutError,
    PynamoDBException,
    TransactWriteError,
    UpdateError,
)
from pynamodb.transactions import TransactWrite

from mailproxy.domain.errors import StorageFailure
from mailproxy.store.models import Models

BATCH_GET_LIMIT = 100
TRANSACTION_ATTEMPTS = 6
_CONDITION_FAILED = "ConditionalCheckFailed"
# Another transaction held one of the items: nothing was decided, try again.
_CONFLICTS = {"TransactionConflict", "TransactionInProgress", "ThrottlingError"}


def _codes(error: TransactWriteError) -> list[str]:
    reasons: list[Any] = list(error.cancellation_reasons or [])
    return [reason.code for reason in reasons if reason is not None and reason.code != "None"]


def is_condition_failure(error: PutError | UpdateError | DeleteError | TransactWriteError) -> bool:
    """A write refused because its condition did not hold (not for any other reason)."""
    if error.cause_response_code == "ConditionalCheckFailedException":
        return True
    if isinstance(error, TransactWriteError) and (
        error.cause_response_code == "TransactionCanceledException"
    ):
        codes = _codes(error)
        return bool(codes) and all(code == _CONDITION_FAILED for code in codes)
    return False


def storage_failure(error: PynamoDBException) -> StorageFailure:
    """The domain's error for a DynamoDB failure: its code, never the request."""
    return StorageFailure(f"DynamoDB {error.cause_response_code or 'error'}")


def written_if_condition_held(write: Callable[[], object]) -> bool:
    """One conditional write (a save, an update, a transaction): True when written, False
    when its condition did not hold; any other failure is a StorageFailure."""
    try:
        write()
    except (PutError, UpdateError, DeleteError, TransactWriteError) as error:
        if is_condition_failure(error):
            return False
        raise storage_failure(error) from error
    except PynamoDBException as error:
        raise storage_failure(error) from error
    return True


def is_conflict(error: TransactWriteError) -> bool:
    if error.cause_response_code in (
        "TransactionConflictException",
        "TransactionInProgressException",
    ):
        return True
    return any(code in _CONFLICTS for code in _codes(error))


def failed_items(error: TransactWriteError) -> list[int]:
    """Positions of the transaction's items whose condition failed."""
    reasons: list[Any] = list(error.cancellation_reasons or [])
    return [
        index
        for index, reason in enumerate(reasons)
        if reason is not None and getattr(reason, "code", None) == _CONDITION_FAILED
    ]


class Transaction:
    """The writes of one transaction, collected, then committed; a commit that met another
    transaction on one of its items (DynamoDB decided nothing) is tried again."""

    def __init__(self, connection: Connection, sleep: Callable[[float], None]) -> None:
        self._connection = connection
        self._sleep = sleep
        self._ops: list[Callable[[TransactWrite], None]] = []

    def save(self, model: Any, condition: Any = None) -> None:
        self._ops.append(lambda tx: tx.save(model, condition=condition))

    def update(self, model: Any, actions: list[Any], condition: Any = None) -> None:
        self._ops.append(lambda tx: tx.update(model, actions=actions, condition=condition))

    def delete(self, model: Any, condition: Any = None) -> None:
        self._ops.append(lambda tx: tx.delete(model, condition=condition))

    def commit(self) -> None:
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                with TransactWrite(connection=self._connection) as tx:
                    for op in self._ops:
                        op(tx)
                return
            except TransactWriteError as error:
                if not is_conflict(error) or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
                self._sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))


class Records:
    """Base of the store's parts; `_m` holds the pynamodb models of this environment."""

    _m: Models
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        transaction = Transaction(self._m.connection, self._sleep)
        yield transaction
        transaction.commit()
