"""SQS pollers that do what a Lambda event source mapping does: receive up to 10 records,
invoke the handler with them, delete only those the handler did not report as failed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from infra.local.events import LambdaContext, sqs_event, sqs_record

log = logging.getLogger("mailproxy.local.pollers")
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


_arns: dict[str, str] = {}


def _queue_arn(sqs: Any, queue_url: str) -> str:
    # A mapping knows its queue's ARN; asking moto each time costs a walk over the queue.
    if queue_url not in _arns:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        _arns[queue_url] = attributes["Attributes"]["QueueArn"]
    return _arns[queue_url]


def poll_once(sqs: Any, queue_url: str, handler: Handler, wait_seconds: int = 0) -> int:
    """One receive and one invocation; returns how many records were received."""
    received = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=["All"],
    ).get("Messages", [])
    if not received:
        return 0
    arn = _queue_arn(sqs, queue_url)
    records = [
        sqs_record(
            message["Body"],
            arn,
            message["ReceiptHandle"],
            message["MessageId"],
            int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        )
        for message in received
    ]
    try:
        response = handler(sqs_event(records), LambdaContext(function_name="mailproxy-sender"))
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        # As Lambda does when an invocation fails: nothing is deleted, all come back later.
        log.exception("sender invocation failed; the batch will be received again")
        return len(received)
    done = [m for m in received if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ],
        )
    return len(received)


class QueuePoller(threading.Thread):
    """One poller per queue, one invocation at a time, as a mapping with concurrency 1."""

    def __init__(self, sqs: Any, queue_url: str, handler: Handler, stop: threading.Event) -> None:
        super().__init__(name=f"poller-{queue_url.rsplit('/', 1)[-1]}", daemon=True)
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._stop_event = stop

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                poll_once(self._sqs, self._queue_url, self._handler, wait_seconds=1)
            except Exception:
                log.exception("polling %s failed", self._queue_url)
                self._stop_event.wait(1)
