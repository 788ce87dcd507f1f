"""Time beyond what a queue can hold, and what the scheduler looks at.

SQS holds a reference back for 15 minutes at most. A message due later waits on a sparse
index (by due time), and the scheduler, ticked every minute, queues what falls due within the
next minute with the exact remaining delay. The same index carries the safety nets: a message
stored but not yet confirmed on its queue, and a message under a sender's lease; when their
time passes without news, the scheduler queues them again.
"""

from __future__ import annotations

import zlib

from mailproxy.domain.submission import MAX_QUEUE_DELAY_SECONDS

DUE_SHARDS = 4
LOOKAHEAD_SECONDS = 60
# A message is confirmed on its queue right after it is stored; past this, the API is
# presumed to have died between its two writes.
ENQUEUE_CONFIRM_GRACE_SECONDS = 180


def due_shard(tenant_id: str, message_id: str) -> str:
    """Due entries spread over a few index partitions, so no single key runs hot."""
    return f"due#{zlib.crc32(f'{tenant_id}/{message_id}'.encode()) % DUE_SHARDS}"


def all_due_shards() -> list[str]:
    return [f"due#{n}" for n in range(DUE_SHARDS)]


def held_shard(tenant_id: str) -> str:
    """Where a suspended tenant's messages wait for activation."""
    return f"held#{tenant_id}"


def needs_scheduler(due_ts: float | None, now: float) -> bool:
    """Due later than a queue can hold a reference back."""
    return due_ts is not None and due_ts - now > MAX_QUEUE_DELAY_SECONDS


def falls_due(due_at: float, now: float) -> bool:
    return due_at <= now + LOOKAHEAD_SECONDS
