"""A queued reference as the sender reads it from an SQS body: what Reference.to_json writes
reads back as it was; anything else is refused (a poison record fails alone)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailproxy.domain.priority import Priority
from mailproxy.queueing import Reference
from mailproxy.sqs_records import QueuedReference


def test_a_reference_reads_back_as_it_was_written() -> None:
    written = Reference("acme", "m1", "t1", "main", Priority.HIGH, 2, submitted_at=1.5)
    assert QueuedReference.model_validate_json(written.to_json()).reference() == written


def test_what_a_reference_leaves_out_takes_its_defaults() -> None:
    read = QueuedReference.model_validate_json(
        '{"tenant_id": "acme", "message_id": "m1", "ticket": "t"}'
    ).reference()
    assert read == Reference("acme", "m1", "t")


@pytest.mark.parametrize(
    "body",
    [
        "{this is not json",
        "",
        "[]",
        "null",
        "42",
        '{"tenant_id": "acme"}',
        '{"tenant_id": "", "message_id": "m1", "ticket": "t"}',
        '{"tenant_id": "acme", "message_id": "m1", "ticket": "t", "priority": "urgent"}',
        '{"tenant_id": "acme", "message_id": "m1", "ticket": "t", "priority": 9}',
    ],
)
def test_a_body_that_holds_no_reference_is_refused(body: str) -> None:
    with pytest.raises(ValidationError):
        QueuedReference.model_validate_json(body)
