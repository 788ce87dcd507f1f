"""Fixed-size slices of a list: the batch limits of DynamoDB and SQS (BatchGetItem's 100 keys,
TransactWriteItems' 100 items, SendMessageBatch's 10 entries).

itertools.batched does this from Python 3.12; the proxy still runs on 3.11.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items, in order; none for no items."""
    if size < 1:
        raise ValueError(f"a chunk holds at least one item, not {size}")
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
