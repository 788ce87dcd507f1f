"""The sender Lambda: SQS batches of message references in, SMTP transactions out.

Each record's body is parsed once, by a pydantic model (mailproxy/sqs_records.py). The
batch is then delivered as a whole: its bodies, tenants and accounts read together, its
messages claimed together, sent in waves of up to each account's `max_connections` at once
(a wave started only while the invocation has time for it), their outcomes written together
(service/delivery.py). Each record's result then goes through Powertools' BatchProcessor, so
one bad record fails alone (partial batch failure) and the rest of its batch is acknowledged;
the invocation's counts go to the /metrics counters and to CloudWatch (mailproxy/cloudwatch.py).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from mailproxy import aws, cloudwatch, runtime
from mailproxy.config import current_settings
from mailproxy.queueing import Reference, new_ticket
from mailproxy.service.delivery import (
    AttachmentSources,
    DeliveryContext,
    Invocation,
    Outcome,
    OutcomeNote,
    deliver_batch,
)
from mailproxy.service.large_files import LargeFileAction, LargeFileSetup
from mailproxy.sqs_records import QueuedReference

logger = Logger(service="mailproxy-sender")
# Outcomes that write an event a tenant hears of in its delivery report.
REPORTABLE = {Outcome.SENT, Outcome.ERROR, Outcome.DEFERRED, Outcome.RATE_LIMITED}


# A wave is started only with time left for its slowest send: a connection (10 s), a reply
# that takes the whole send timeout (30 s), and the writes of its outcomes. The rest of the
# batch is queued again for the next invocation.
WAVE_SECONDS = 45


def _context() -> DeliveryContext:
    settings = current_settings()
    return DeliveryContext(
        store=runtime.store(),
        transport=runtime.smtp_pool(),
        queues=runtime.queues(),
        clock=runtime.clock,
        lease_seconds=current_settings().lease_seconds,
        new_ticket=new_ticket,
        secrets=runtime.secret_box(),
        attachment_sources=AttachmentSources(
            url_policy=runtime.url_policy(),
            s3_buckets=current_settings().s3_attachment_buckets,
            s3_client=lambda: aws.client("s3"),
        ),
        large_files=LargeFileSetup(
            vault=runtime.file_objects,
            links=runtime.store(),
            payload_bucket=settings.resources.buckets.get("payloads"),
            allowed_buckets=settings.s3_attachment_buckets,
            public_base_url=settings.public_base_url,
        ),
        on_attempt=_log_attempt,
        default_return_path=runtime.instance_return_path,
    )


# The words of the original proxy's log (its architecture page shows them), so what its users
# search for in their logs still finds each delivery.
def _log_attempt(message_id: str, recipients: list[str]) -> None:
    logger.info(
        f"Attempting delivery for message {message_id} to {', '.join(recipients)}",
        extra={"message_id": message_id},
    )


def _log_outcome(outcome: Outcome, message_id: str, note: OutcomeNote | None) -> None:
    keys = {"outcome": outcome.value, "message_id": message_id}
    keys |= note.as_log_keys() if note else {}
    if outcome is Outcome.SENT:
        account = note.account_id if note else None
        logger.info(f"Delivery succeeded for message {message_id} (account={account})", extra=keys)
    elif outcome is Outcome.ERROR:
        reason = note.reason if note else None
        logger.warning(f"Delivery failed for message {message_id}: {reason}", extra=keys)
    else:
        logger.info(f"Delivery {outcome.value} for message {message_id}", extra=keys)


def _log_large_file(message_id: str, action: LargeFileAction) -> None:
    # The file's name, size and place; never its download token, which is a bearer secret.
    keys = {"message_id": message_id, **action.as_log_keys()}
    size = f"{action.size} bytes, over the large-file limit of {action.max_size_mb:g} MB"
    if action.action == "warn":
        logger.warning(
            f"attachment {action.filename} of {message_id} ({size}) sent as is", extra=keys
        )
    else:
        logger.info(
            f"attachment {action.filename} of {message_id} ({size}) stored, a link sent instead",
            extra=keys,
        )


def _parsed(records: list[dict[str, Any]]) -> dict[str, Reference | ValidationError]:
    """Each record's reference, or why it holds none, by SQS message id: parsed once, here,
    because the batch is delivered as a whole before the batch processor reports on each
    record (a record that holds no reference fails alone, there)."""
    parsed: dict[str, Reference | ValidationError] = {}
    for record in records:
        message_id = record.get("messageId")
        if message_id is None:
            continue  # not an SQS record: the batch processor fails it
        try:
            parsed[message_id] = QueuedReference.model_validate_json(
                record.get("body") or ""
            ).reference()
        except ValidationError as error:
            parsed[message_id] = error
    return parsed


def _time_for_a_wave(context: LambdaContext) -> bool:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return not callable(remaining) or remaining() >= WAVE_SECONDS * 1000


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    parsed = _parsed(event.get("Records", []))
    readable = {key: value for key, value in parsed.items() if isinstance(value, Reference)}
    references = list(readable.values())
    invocation = Invocation.prepare(_context(), references)
    # The whole batch first, then each record's result through the batch processor, which
    # reports the ones that failed.
    outcomes = deliver_batch(references, invocation, lambda: _time_for_a_wave(context))
    results = dict(zip(readable, outcomes, strict=True))
    with_news: set[str] = set()

    def record_handler(record: SQSRecord) -> str:
        reference = parsed[record.message_id]
        if isinstance(reference, ValidationError):
            raise reference  # a poison record: it fails alone
        result = results[record.message_id]
        with logger.append_context_keys(
            tenant_id=reference.tenant_id,
            message_id=reference.message_id,
            account_id=reference.account_id,
        ):
            if isinstance(result, Exception):
                raise result
            for action in invocation.large_files.pop(reference.message_id, []):
                _log_large_file(reference.message_id, action)
            # The message id again in the record itself: local mode runs several sender
            # environments in one process, where appended keys are shared.
            note = invocation.notes.pop(reference.message_id, None)
            _log_outcome(result, reference.message_id, note)
            if result in REPORTABLE:
                with_news.add(reference.tenant_id)
            return result.value

    response = process_partial_response(
        event=event,
        record_handler=record_handler,
        # One per invocation: a BatchProcessor keeps the batch's records and results on
        # itself, and local mode runs several invocations of this module at once.
        processor=BatchProcessor(event_type=EventType.SQS),
        context=context,
    )
    if with_news:
        # The reporter tells the tenants now, not at its next minute tick.
        runtime.wakeups().wake(with_news)
    _publish(invocation)
    return response


def _publish(invocation: Invocation) -> None:
    """This invocation's counts: added to the /metrics counters in one write per series, and
    emitted as CloudWatch EMF metrics."""
    runtime.store().add_counts(invocation.counts)
    cloudwatch.publish_delivery(invocation.counts, invocation.send_delays)
