"""Delivery counters, and their Prometheus text (the names of genro-mail-proxy's /metrics)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum


class Count(StrEnum):
    SUBMITTED = "submitted"  # accepted new messages (for the pending gauge)
    SENT = "sent"
    ERRORS = "errors"
    DEFERRED = "deferred"
    RATE_LIMITED = "rate_limited"
    AMBIGUOUS = "ambiguous"
    REMOVED = "removed"  # deleted before they were sent or failed (for the pending gauge)


# (tenant_id, account_id, what) -> how many
Counts = Counter[tuple[str, str, Count]]

_PROMETHEUS_COUNTERS = {
    Count.SENT: ("gmp_sent_total", "Messages sent"),
    Count.ERRORS: ("gmp_errors_total", "Messages that failed"),
    Count.DEFERRED: ("gmp_deferred_total", "Delivery attempts deferred for a retry"),
    Count.RATE_LIMITED: ("gmp_rate_limited_total", "Sends held back by a rate limit"),
    Count.AMBIGUOUS: ("gmp_ambiguous_total", "Deliveries that may have happened twice"),
}


@dataclass(frozen=True)
class Series:
    tenant_id: str
    account_id: str
    count: Count
    value: int


def _labels(series: Series, tenant_names: dict[str, str]) -> str:
    values = {
        "tenant_id": series.tenant_id,
        "tenant_name": tenant_names.get(series.tenant_id, series.tenant_id),
        "account_id": series.account_id,
        "account_name": series.account_id,
    }
    return ",".join(f'{key}="{_escape(value)}"' for key, value in values.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_prometheus(rows: list[Series], tenant_names: dict[str, str]) -> str:
    """Text format 0.0.4. gmp_pending_messages is what was accepted and neither sent, failed
    nor removed yet."""
    lines: list[str] = []
    for count, (name, help_text) in _PROMETHEUS_COUNTERS.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        for row in sorted(rows, key=lambda r: (r.tenant_id, r.account_id)):
            if row.count is count:
                lines.append(f"{name}{{{_labels(row, tenant_names)}}} {row.value}")
    pending: Counter[tuple[str, str]] = Counter()
    for row in rows:
        sign = {Count.SUBMITTED: 1, Count.SENT: -1, Count.ERRORS: -1, Count.REMOVED: -1}.get(
            row.count, 0
        )
        pending[(row.tenant_id, row.account_id)] += sign * row.value
    lines += [
        "# HELP gmp_pending_messages Messages accepted and not yet sent or failed",
        "# TYPE gmp_pending_messages gauge",
    ]
    for (tenant_id, account_id), value in sorted(pending.items()):
        labels = _labels(Series(tenant_id, account_id, Count.SUBMITTED, 0), tenant_names)
        lines.append(f"gmp_pending_messages{{{labels}}} {max(value, 0)}")
    return "\n".join(lines) + "\n"
