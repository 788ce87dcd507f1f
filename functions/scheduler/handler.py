"""The scheduler Lambda, ticked every minute by EventBridge (and woken by run-now): queue
what falls due within the next minute, and recover what was lost on the way."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailproxy import runtime
from mailproxy.service.scheduling import tick

logger = Logger(service="mailproxy-scheduler")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    result = tick(runtime.store(), runtime.queues(), clock=runtime.clock)
    logger.info("tick", extra={"queued": result.queued, "superseded": result.superseded})
    return {"queued": result.queued, "superseded": result.superseded}
