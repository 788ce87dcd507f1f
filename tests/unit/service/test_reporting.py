"""Delivery reports against the in-memory store and a recording poster: events go to the
tenant's sync URL in event order and are marked reported only after a 2xx (no network)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailproxy.domain.record import MessageEvent
from mailproxy.domain.status import EventType
from mailproxy.domain.tenant import Tenant
from mailproxy.service.reporting import (
    ReportingContext,
    SyncOutcome,
    SyncResponse,
    run_reports,
)
from tests.support.fakes import T0, FakeClock, FakeSealer, InMemoryStore

URL = "https://app.acme.test"


@dataclass
class Client:
    """The tenant's sync endpoint: answers `status`, and keeps what it was sent."""

    status: int = 200
    answer: Any = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self, url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float
    ) -> SyncResponse:
        self.calls.append({"url": url, "payload": payload})
        return SyncResponse(self.status, self.answer)


def world(base_url: str | None = URL, active: bool = True) -> tuple[InMemoryStore, FakeClock]:
    store = InMemoryStore()
    store.create_tenant(
        Tenant(id="acme", created_at=T0, updated_at=T0, client_base_url=base_url, active=active)
    )
    store.events["acme"] = [
        MessageEvent("e2", "m2", EventType.SENT, T0 + 2),
        MessageEvent("e1", "m1", EventType.SENT, T0 + 1),
    ]
    return store, FakeClock(T0 + 10)


def context(store: InMemoryStore, clock: FakeClock, client: Client) -> ReportingContext:
    return ReportingContext(store=store, clock=clock, secrets=FakeSealer(), post=client)


def test_unreported_events_are_posted_in_event_order_then_marked_reported() -> None:
    store, clock = world()
    client = Client()
    [result] = run_reports(context(store, clock, client), None)
    assert (result.outcome, result.calls, result.reported) == (SyncOutcome.SYNCED, 1, 2)
    [call] = client.calls
    assert call["url"].startswith(URL)
    assert [entry["id"] for entry in call["payload"]["delivery_report"]] == ["m1", "m2"]
    assert not store.has_unreported("acme")
    state = store.sync_state("acme")
    assert state is not None
    assert (state.last_sync_ts, state.sync_lease_until) == (clock.now, None)


def test_a_refused_call_leaves_the_events_for_later_and_backs_the_tenant_off() -> None:
    store, clock = world()
    [result] = run_reports(context(store, clock, Client(status=503)), None)
    assert result.outcome is SyncOutcome.FAILED
    assert result.detail == "the client answered HTTP 503"
    assert store.has_unreported("acme")
    state = store.sync_state("acme")
    assert state is not None
    assert state.sync_failures == 1
    assert state.sync_retry_after is not None
    assert state.sync_retry_after > clock.now
    assert state.sync_lease_until is None


def test_a_tenant_in_backoff_is_not_called_until_forced() -> None:
    store, clock = world()
    run_reports(context(store, clock, Client(status=500)), None)
    client = Client()
    [waiting] = run_reports(context(store, clock, client), None)
    assert (waiting.outcome, client.calls) == (SyncOutcome.SKIPPED, [])
    [forced] = run_reports(context(store, clock, client), ["acme"], force=True)
    assert forced.outcome is SyncOutcome.SYNCED


def test_a_tenant_without_a_url_has_its_events_marked_without_a_call() -> None:
    store, clock = world(base_url=None)
    client = Client()
    [result] = run_reports(context(store, clock, client), None)
    assert (result.outcome, result.reported, client.calls) == (SyncOutcome.MARKED, 2, [])


def test_a_tenant_whose_sync_is_in_flight_elsewhere_is_busy() -> None:
    store, clock = world()
    assert store.acquire_sync_lease("acme", clock.now, 180)
    [result] = run_reports(context(store, clock, Client()), None)
    assert result.outcome is SyncOutcome.BUSY


def test_an_inactive_tenant_is_left_alone() -> None:
    store, clock = world(active=False)
    client = Client()
    [result] = run_reports(context(store, clock, client), None)
    assert (result.outcome, result.detail, client.calls) == (SyncOutcome.SKIPPED, "inactive", [])
