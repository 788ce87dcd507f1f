"""CloudWatch metrics of the sender, as EMF lines on stdout (Powertools' single_metric):
the adapter that keeps metric names, units and dimensions out of the handler."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mailproxy.domain.metrics import Counts

if TYPE_CHECKING:
    from mailproxy.service.bounce_reader import ReaderOutcome

NAMESPACE = "MailProxy"
# The dimension of the totals: an alarm cannot add up dimensions, so each count is also
# emitted over every tenant.
ALL_TENANTS = {"scope": "all"}


def publish_delivery(counts: Counts, send_delays: Iterable[tuple[str, str, float]]) -> None:
    """One invocation's counts per tenant and account, their totals over every tenant, and
    each sent message's time from acceptance to send (tenant, account, seconds)."""
    for (tenant_id, account_id, what), value in counts.items():
        _emit(what.value, MetricUnit.Count, value, _per_account(tenant_id, account_id))
    totals: dict[str, int] = {}
    for (_, _, what), value in counts.items():
        totals[what.value] = totals.get(what.value, 0) + value
    for name, value in totals.items():
        _emit(name, MetricUnit.Count, value, ALL_TENANTS)
    for tenant_id, account_id, seconds in send_delays:
        _emit(
            "submit_to_send",
            MetricUnit.Milliseconds,
            seconds * 1000,
            _per_account(tenant_id, account_id),
        )


def _per_account(tenant_id: str, account_id: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "account_id": account_id}


def _emit(name: str, unit: MetricUnit, value: float, dimensions: dict[str, str]) -> None:
    with single_metric(
        name=name, unit=unit, value=value, namespace=NAMESPACE, default_dimensions=dimensions
    ):
        pass


def publish_bounces(outcome: ReaderOutcome) -> None:
    """The bounce reader's invocation: bounces recorded by tenant and type (and their totals),
    notifications that matched no message, and whether the mailbox's last run failed (1/0,
    every tick while the reader is enabled: the "reader failing" alarm watches it)."""
    run = outcome.run
    if run is not None:
        totals: dict[str, int] = {}
        for (tenant_id, bounce_type), value in run.by_tenant.items():
            _emit(
                "bounces",
                MetricUnit.Count,
                value,
                {"tenant_id": tenant_id, "bounce_type": bounce_type.value},
            )
            totals[bounce_type.value] = totals.get(bounce_type.value, 0) + value
        for type_name, value in totals.items():
            _emit("bounces", MetricUnit.Count, value, {**ALL_TENANTS, "bounce_type": type_name})
        _emit("bounces_unmatched", MetricUnit.Count, run.unmatched, ALL_TENANTS)
    if outcome.failing is not None:
        _emit("bounce_reader_failing", MetricUnit.Count, int(outcome.failing), ALL_TENANTS)
