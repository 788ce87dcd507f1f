"""Delivery counters: added to in one write per (tenant, account, metric) and invocation."""

from __future__ import annotations

from mailproxy.domain.metrics import Count, Counts, Series
from mailproxy.store.base import Records


class MetricRecords(Records):
    def add_counts(self, counts: Counts) -> None:
        m = self._m.metric
        for (tenant_id, account_id, count), value in counts.items():
            if value:
                m(tenant_id, f"{account_id}#{count.value}").update(actions=[m.value.add(value)])

    def all_counts(self) -> list[Series]:
        rows = []
        for item in self._m.metric.scan():
            account_id, _, name = str(item.series).rpartition("#")
            try:
                count = Count(name)
            except ValueError:
                continue
            rows.append(Series(item.tenant_id, account_id, count, int(item.value or 0)))
        return rows
