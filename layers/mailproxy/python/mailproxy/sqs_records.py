"""The body of a sender's SQS record, a queued reference, as a pydantic model: parsed
once, where the sender's handler reads the batch. (The record around it is Powertools'
SQSRecord; its parser's SqsRecordModel would cost the sender's cold start its whole set of
event models, for fields the sender never reads.)

Built on first use, not at a cold start (tests/integration/functions/test_handler_import.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mailproxy.domain.priority import Priority
from mailproxy.queueing import Reference


class QueuedReference(BaseModel):
    """The body of an SQS record: a Reference as queueing.Reference.to_json writes it."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    # Named, not empty (a number is taken as its digits).
    tenant_id: str = Field(min_length=1, coerce_numbers_to_str=True)
    message_id: str = Field(min_length=1, coerce_numbers_to_str=True)
    ticket: str = Field(min_length=1, coerce_numbers_to_str=True)
    account_id: str | None = Field(default=None, coerce_numbers_to_str=True)
    priority: Priority = Priority.MEDIUM
    retries: int = 0
    submitted_at: float | None = None

    def reference(self) -> Reference:
        return Reference(
            self.tenant_id,
            self.message_id,
            self.ticket,
            self.account_id,
            self.priority,
            self.retries,
            submitted_at=self.submitted_at or None,
        )
