"""The bounce reader Lambda: the minute tick (EventBridge), or a reload from the API
(`{"reload": true}`, an asynchronous invoke: POST /instance/reload-bounce).

Reads the instance settings; when the reader is enabled and due (bounce_poll_interval since
its last run on that mailbox; a reload is always due), takes the run lease, reads the mailbox
once (mailproxy.service.bounces.run_once), emits the EMF metrics and logs one summary line.
A mailbox that fails (login, TLS, network) ends the run there: logged, counted as failing,
tried again when next due; the invocation itself succeeds.
"""

from __future__ import annotations

import uuid
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailproxy import cloudwatch, runtime
from mailproxy.service.bounce_reader import ReaderContext, ReaderState, read_bounces

logger = Logger(service="mailproxy-bouncer")

# Longer than the function's timeout (infra/constructs/bouncer.py): a run that is still going
# is never taken over; one that died holds the mailbox this long at most.
LEASE_SECONDS = 330.0


def _context(lambda_context: Any) -> ReaderContext:
    from mailproxy.store.bounces import StoredMessageLookup

    store = runtime.store()
    return ReaderContext(
        store=store,
        secrets=runtime.secret_box(),
        mailbox_for=runtime.bounce_mailbox_for,
        lookup_for=lambda since: StoredMessageLookup(store, since),
        events=store,
        clock=runtime.clock,
        owner=getattr(lambda_context, "aws_request_id", None) or str(uuid.uuid4()),
        lease_seconds=LEASE_SECONDS,
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    force = isinstance(event, dict) and event.get("reload") is True
    outcome = read_bounces(_context(context), force=force)
    cloudwatch.publish_bounces(outcome)
    summary: dict[str, Any] = {"state": outcome.state.value}
    run = outcome.run
    if run is not None:
        summary |= {
            "read": run.read,
            "hard": run.hard,
            "soft": run.soft,
            "unmatched": run.unmatched,
            "duplicates": run.duplicates,
            "not_bounces": run.not_bounces,
            "more": run.more,
        }
        if run.error is not None:
            summary["error"] = run.error
            logger.warning("bounce mailbox run failed", extra=summary)
            return summary
    if outcome.state in (ReaderState.RAN, ReaderState.INCOMPLETE) or force:
        logger.info("bounce mailbox run", extra=summary)
    return summary
