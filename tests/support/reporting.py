"""Delivery reports from a test's point of view: a tenant's sync endpoint on 127.0.0.1 that
records every report and answers from a script, the reporter's core wired to the real store
of `mailproxy.runtime`, and unreported events written straight into the events table."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from mailproxy.domain.clock import Clock
from mailproxy.domain.reporting import SyncState
from mailproxy.service.reporting import ReportingContext
from tests.support.http_servers import HttpServer, Recorded, Reply

OK = {"ok": True}


def answer(body: Any = OK, status: int = 200) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


class SyncEndpoint:
    """Sync endpoints of any number of tenants (one path each) on one local HTTP server.

    Each call is recorded; the answer is the next of `script` (a Reply, or a function of the
    request), then `default`. With `hold`, each call waits (at most `hold` seconds, or until
    the endpoint closes) before it answers, and `arrived` is set when the first one came."""

    def __init__(
        self,
        script: list[Reply | Callable[[Recorded], Reply]] | None = None,
        *,
        default: Reply | None = None,
        hold: float = 0.0,
    ) -> None:
        self.script = list(script or [])
        self.default = default or answer()
        self.hold = hold
        self.arrived = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self.server = HttpServer(fallback=self._answer)

    def base_url(self) -> str:
        return self.server.url("")

    def _answer(self, request: Recorded) -> Reply:
        self.arrived.set()
        if self.hold:
            self._closing.wait(self.hold)
        with self._lock:
            step = self.script.pop(0) if self.script else self.default
        return step(request) if callable(step) else step

    # -- what arrived -----------------------------------------------------------------------

    def calls(self, path: str | None = None) -> list[Recorded]:
        received = list(self.server.received)
        return [call for call in received if path is None or call.path == path]

    def reports(self, path: str | None = None) -> list[list[dict[str, Any]]]:
        """The delivery_report list of each call, in the order the calls came."""
        reports = []
        for call in self.calls(path):
            body = json.loads(call.body)
            assert set(body) == {"delivery_report"}, body
            reports.append(body["delivery_report"])
        return reports

    def reported_ids(self, path: str | None = None) -> list[str]:
        return [line["id"] for report in self.reports(path) for line in report]

    def __enter__(self) -> SyncEndpoint:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.server.__exit__(*exc)


def reporting_context(clock: Clock, **overrides: Any) -> ReportingContext:
    """The reporter's core over this environment's store, secret box and URL policy."""
    from mailproxy import runtime

    settings: dict[str, Any] = {
        "store": runtime.store(),
        "clock": clock,
        "secrets": runtime.secret_box(),
        "url_policy": runtime.url_policy(),
    }
    return ReportingContext(**(settings | overrides))


def sync_state(tenant_id: str) -> SyncState:
    from mailproxy import runtime

    state = runtime.store().sync_state(tenant_id)
    assert state is not None, f"no tenant {tenant_id}"
    return state


def add_events(
    tenant_id: str,
    count: int,
    *,
    start_ms: int,
    event_type: str = "sent",
    prefix: str = "bulk",
) -> list[str]:
    """`count` unreported events of as many messages (which are not stored), 1 ms apart, as
    if delivered; their message ids, in event order."""
    from mailproxy import runtime

    model = runtime.store()._m.event
    ids = [f"{prefix}-{n:04d}" for n in range(count)]
    with model.batch_write() as batch:
        for n, message_id in enumerate(ids):
            at_ms = start_ms + n
            batch.save(
                model(
                    tenant_id,
                    f"{at_ms:013d}#{message_id}#1#{event_type}",
                    message_id=message_id,
                    event_type=event_type,
                    event_ts=at_ms / 1000,
                    description="connection lost" if event_type == "ambiguous" else None,
                    unreported=tenant_id,
                )
            )
    return ids


def unreported_count(tenant_id: str) -> int:
    """Events of the tenant still waiting, as the index shows them."""
    from mailproxy import runtime

    return sum(1 for _ in runtime.store()._m.event.by_unreported.query(tenant_id))
