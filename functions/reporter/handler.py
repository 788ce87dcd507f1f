"""The reporter Lambda: delivery reports to the tenants' sync endpoints.

What it is asked, in one of three shapes, given directly or as the bodies of an SQS batch (the
wake-up queue):
- the EventBridge minute tick (or any other event): every tenant whose sync is due;
- `{"tenant_id": "...", "force": true}`: a run-now, that tenant at once, even in
  do-not-disturb or backoff;
- `{"tenants": [...]}` (`null`: every tenant; `"force": true` allowed): a wake after
  deliveries, those tenants if due.
Answers how many tenants were synced and how many failed. A wake that is lost costs nothing
but time: the next tick reports the same events.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from mailproxy import runtime
from mailproxy.service.reporting import ReportingContext, SyncOutcome, SyncResult, run_reports
from mailproxy.wake_up import WakeUp

logger = Logger(service="mailproxy-reporter")

Run = tuple[list[str] | None, bool]  # the tenants (None: every one), forced or not


def _context(lambda_context: Any) -> ReportingContext:
    remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
    return ReportingContext(
        store=runtime.store(),
        clock=runtime.clock,
        secrets=runtime.secret_box(),
        url_policy=runtime.url_policy(),
        time_left=(lambda: remaining() / 1000) if callable(remaining) else None,
    )


def _request(event: Any) -> Run | None:
    """One request; None for one that names nothing readable."""
    try:
        return WakeUp.model_validate(event).run()
    except ValidationError:
        return None


def _runs(event: Any) -> list[Run]:
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        request = _request(event)
        return [request] if request is not None else []
    requests = []
    for record in records:
        body = record.get("body") if isinstance(record, dict) else None
        try:
            request = WakeUp.model_validate_json(body or "").run()
        except ValidationError:
            request = None
        if request is None:
            logger.warning("unreadable wake-up ignored")
        else:
            requests.append(request)
    return _merged(requests)


def _merged(requests: list[Run]) -> list[Run]:
    """A batch of wake-ups as few runs: the forced tenants first, then the others."""
    if any(tenants is None and force for tenants, force in requests):
        return [(None, True)]
    forced = {t for tenants, force in requests if force and tenants for t in tenants}
    runs: list[Run] = [(sorted(forced), True)] if forced else []
    if any(tenants is None for tenants, _ in requests):
        runs.append((None, False))
    else:
        woken = {t for tenants, force in requests if not force and tenants for t in tenants}
        if woken - forced:
            runs.append((sorted(woken - forced), False))
    return runs


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    ctx = _context(context)
    results: list[SyncResult] = []
    for tenant_ids, force in _runs(event):
        results += run_reports(ctx, tenant_ids, force)
    for result in results:
        if result.outcome is SyncOutcome.FAILED:
            logger.warning(
                "delivery report sync failed",
                extra={
                    "tenant_id": result.tenant_id,
                    "calls": result.calls,
                    "detail": result.detail,
                },
                exc_info=result.error,
            )
    summary = {
        "synced": sum(r.outcome is SyncOutcome.SYNCED for r in results),
        "failed": sum(r.outcome is SyncOutcome.FAILED for r in results),
    }
    logger.info(
        "delivery reports run",
        extra=summary
        | {
            "tenants": len(results),
            "reported": sum(r.reported for r in results),
            "marked_without_url": sum(r.outcome is SyncOutcome.MARKED for r in results),
            "busy": sum(r.outcome is SyncOutcome.BUSY for r in results),
        },
    )
    return summary
