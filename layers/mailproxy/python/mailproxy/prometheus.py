"""GET /metrics: the delivery counters as a prometheus_client collector.

Two families of names, so that dashboards and alert rules written for the original proxy work
as they are: genro-mail-proxy 0.6's gmp_* series (labelled by tenant and account), and the
names its architecture page shows (mail_*_total by account_id and tenant_id, and the
unlabelled mail_pending gauge its alert rule `mail_pending > 100` reads).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailproxy.domain.metrics import Count, Series

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes

# Count -> (gmp name, the architecture page's name, help); prometheus_client adds "_total".
_COUNTERS = {
    Count.SENT: ("gmp_sent", "mail_sent", "Messages sent"),
    Count.ERRORS: ("gmp_errors", "mail_error", "Messages that failed"),
    Count.DEFERRED: ("gmp_deferred", "mail_deferred", "Delivery attempts deferred for a retry"),
    Count.RATE_LIMITED: ("gmp_rate_limited", "mail_rate_limited", "Sends held by a rate limit"),
    Count.AMBIGUOUS: ("gmp_ambiguous", None, "Deliveries that may have happened twice"),
}
_PENDING_SIGN = {Count.SUBMITTED: 1, Count.SENT: -1, Count.ERRORS: -1, Count.REMOVED: -1}
_GMP_LABELS = ["tenant_id", "tenant_name", "account_id", "account_name"]
_PAGE_LABELS = ["account_id", "tenant_id"]

AccountKey = tuple[str, str]  # (tenant_id, account_id)


class DeliveryCollector(Collector):
    """Every known account has every series, at 0 before any traffic."""

    def __init__(
        self, rows: list[Series], tenant_names: dict[str, str], accounts: Iterable[AccountKey]
    ) -> None:
        self._rows = rows
        self._names = tenant_names
        # With no account yet, genro-mail-proxy shows one "default" label set at 0: so here.
        known = {*accounts, *((r.tenant_id, r.account_id) for r in rows)}
        self._accounts = sorted(known or {("default", "default")})

    def collect(self) -> Iterator[Metric]:
        totals: dict[Count, Counter[AccountKey]] = {count: Counter() for count in Count}
        for row in self._rows:
            totals[row.count][(row.tenant_id, row.account_id)] += row.value
        for count, (gmp_name, page_name, help_text) in _COUNTERS.items():
            gmp = CounterMetricFamily(gmp_name, help_text, labels=_GMP_LABELS)
            for key in self._accounts:
                gmp.add_metric(self._gmp_labels(key), totals[count][key])
            yield gmp
            if page_name is None:
                continue
            page = CounterMetricFamily(page_name, help_text, labels=_PAGE_LABELS)
            for tenant_id, account_id in self._accounts:
                page.add_metric([account_id, tenant_id], totals[count][(tenant_id, account_id)])
            yield page
        pending = Counter[AccountKey]()
        for count, sign in _PENDING_SIGN.items():
            for key, value in totals[count].items():
                pending[key] += sign * value
        gauge = GaugeMetricFamily(
            "gmp_pending_messages",
            "Messages accepted and not yet sent or failed",
            labels=_GMP_LABELS,
        )
        for key in self._accounts:
            gauge.add_metric(self._gmp_labels(key), max(pending[key], 0))
        yield gauge
        yield GaugeMetricFamily(
            "mail_pending",
            "Messages accepted and not yet sent or failed, every account together",
            value=sum(max(pending[key], 0) for key in self._accounts),
        )

    def _gmp_labels(self, key: AccountKey) -> list[str]:
        tenant_id, account_id = key
        return [tenant_id, self._names.get(tenant_id, tenant_id), account_id, account_id]


def exposition(
    rows: list[Series], tenant_names: dict[str, str], accounts: Iterable[AccountKey]
) -> str:
    """Text format 0.0.4, rendered by prometheus_client."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeliveryCollector(rows, tenant_names, accounts))
    return generate_latest(registry).decode()
