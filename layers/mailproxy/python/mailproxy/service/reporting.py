"""Delivery reports: tell each tenant's application what became of its messages.

For a tenant whose sync is due (domain/reporting.py decides), the reporter takes the tenant's
lease (one sync in flight per tenant), POSTs its oldest unreported events, in event order and
at most MAX_EVENTS_PER_CALL of them, to `client_base_url + client_sync_path` with the tenant's
credentials, and marks them reported only after a 2xx. Anything else (another status, a
network error, a timeout, a destination the SSRF guard refuses) leaves them for a later run,
counts a failure and backs the tenant off. The client's answer may ask for another call at
once (`queued` > 0) or for quiet until `next_sync_after`; a backlog of more than one call's
events is sent in further calls. Both are bounded (MAX_CALLS_PER_RUN), so one tenant cannot
hold a run; each call has its own timeout, so a slow client cannot either.

A tenant without a client_base_url has nobody to tell: its events are marked reported without
a call (so that retention can remove its finished messages). An inactive tenant is left alone.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailproxy.domain.clock import Clock
from mailproxy.domain.reporting import (
    MAX_CALLS_PER_RUN,
    MAX_EVENTS_PER_CALL,
    SyncState,
    backoff_seconds,
    read_answer,
    report_entry,
    sync_due,
    sync_url,
)
from mailproxy.domain.tenant import Tenant
from mailproxy.outbound_http import UrlPolicy
from mailproxy.service.ports import Opener, ReportingStore
from mailproxy.timeouts import HTTP_CONNECT_SECONDS, REPORT_CALL_SECONDS

# Longer than the longest run for one tenant (every call at its connect and read timeouts),
# so a lease never runs out under a sync still in flight.
LEASE_SECONDS = 180.0
# The most of a client's answer that is read; a longer one counts as carrying no fields.
MAX_ANSWER_BYTES = 64 * 1024
# A call is started only with this much of the invocation left beyond its own timeouts.
_TIME_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class SyncResponse:
    status: int
    body: Any = None  # the answer's JSON, or None when it is not JSON (or too long)


# POST `payload` as JSON to `url` with `headers`, giving up after `timeout` seconds; raises on
# a network failure or a refused destination.
Poster = Callable[[str, dict[str, Any], dict[str, str], float], SyncResponse]


def guarded_poster(policy: UrlPolicy) -> Poster:
    """The poster of a deployment: outbound_http's SSRF-guarded request (the address checked
    on connect and on every redirect hop, the credentials dropped when a redirect leaves the
    tenant's origin)."""

    def post(
        url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float
    ) -> SyncResponse:
        from mailproxy import outbound_http

        session = outbound_http.guarded_session(policy)
        try:
            response = outbound_http.request(
                "POST",
                url,
                policy,
                session=session,
                json=payload,
                headers=headers,
                timeout=(min(HTTP_CONNECT_SECONDS, timeout), timeout),
                stream=True,
            )
            try:
                return SyncResponse(response.status_code, _json_answer(response))
            finally:
                response.close()
        finally:
            session.close()

    return post


def _json_answer(response: Any) -> Any:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(8192):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return None
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return None


@dataclass(frozen=True, kw_only=True)
class ReportingContext:
    """What a run of the reporter uses. `post` defaults to the guarded poster for
    `url_policy` (the deployment's, runtime.url_policy()); `time_left`, when given, says how
    many seconds the invocation has left (no call is started without time for it)."""

    store: ReportingStore
    clock: Clock
    secrets: Opener
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)
    post: Poster | None = None
    timeout_seconds: float = REPORT_CALL_SECONDS
    max_calls: int = MAX_CALLS_PER_RUN
    batch_size: int = MAX_EVENTS_PER_CALL
    lease_seconds: float = LEASE_SECONDS
    time_left: Callable[[], float] | None = None

    def poster(self) -> Poster:
        return self.post if self.post is not None else guarded_poster(self.url_policy)

    def has_time_for_a_call(self) -> bool:
        if self.time_left is None:
            return True
        needed = self.timeout_seconds + HTTP_CONNECT_SECONDS + _TIME_MARGIN_SECONDS
        return self.time_left() > needed


class SyncOutcome(StrEnum):
    SYNCED = "synced"  # called; every call answered 2xx
    FAILED = "failed"  # a call failed (or could not be made): backoff
    MARKED = "marked"  # no client_base_url: events marked reported without a call
    SKIPPED = "skipped"  # not due, inactive, unknown, or no time left (see detail)
    BUSY = "busy"  # another run holds the tenant's sync lease


@dataclass(frozen=True)
class SyncResult:
    tenant_id: str
    outcome: SyncOutcome
    calls: int = 0
    reported: int = 0  # events marked reported
    detail: str | None = None
    error: BaseException | None = field(default=None, compare=False, repr=False)


def run_reports(
    ctx: ReportingContext, tenant_ids: Sequence[str] | None, force: bool = False
) -> list[SyncResult]:
    """One run over every tenant (tenant_ids None: the minute tick) or the tenants named (a
    run-now, a wake after deliveries). `force` calls even a tenant in do-not-disturb or in
    backoff. One tenant's failure, of any kind, does not stop the others."""
    results: list[SyncResult] = []
    for tenant, state in ctx.store.tenants_for_sync(tenant_ids):
        try:
            results.append(sync_tenant(tenant, ctx, ctx.clock(), force, state=state))
        except Exception as error:  # the store failed for this tenant: the next run retries
            results.append(
                SyncResult(tenant.id, SyncOutcome.FAILED, detail=_describe(error), error=error)
            )
    return results


def sync_tenant(
    tenant: Tenant,
    ctx: ReportingContext,
    now: float,
    force: bool = False,
    *,
    state: SyncState | None = None,
) -> SyncResult:
    """Sync one tenant if it is due at `now` (with `force`: a run-now, at once). `state` is
    the tenant's sync state when the caller has just read it."""
    if not tenant.active:
        return SyncResult(tenant.id, SyncOutcome.SKIPPED, detail="inactive")
    if state is None:
        state = ctx.store.sync_state(tenant.id)
        if state is None:
            return SyncResult(tenant.id, SyncOutcome.SKIPPED, detail="unknown tenant")
    if not tenant.client_base_url:
        return _mark_without_call(tenant, ctx)
    has_events = ctx.store.has_unreported(tenant.id)
    if not sync_due(state, has_events, now, force):
        return SyncResult(tenant.id, SyncOutcome.SKIPPED, detail="not due")
    if not ctx.has_time_for_a_call():
        return SyncResult(tenant.id, SyncOutcome.SKIPPED, detail="no time left")
    if not ctx.store.acquire_sync_lease(tenant.id, now, ctx.lease_seconds):
        return SyncResult(tenant.id, SyncOutcome.BUSY)
    return _Sync(tenant, ctx, now, now + ctx.lease_seconds, has_events, force).run()


def _mark_without_call(tenant: Tenant, ctx: ReportingContext) -> SyncResult:
    marked = 0
    for _ in range(ctx.max_calls):
        events = ctx.store.unreported_events(tenant.id, ctx.batch_size)
        if not events:
            break
        marked += ctx.store.mark_reported(tenant.id, events, ctx.clock())
        if len(events) < ctx.batch_size:
            break
    if not marked:
        return SyncResult(tenant.id, SyncOutcome.SKIPPED, detail="no client_base_url")
    return SyncResult(tenant.id, SyncOutcome.MARKED, reported=marked, detail="no client_base_url")


@dataclass
class _Sync:
    """One tenant's sync under its lease: the calls, then the outcome, recorded with the
    lease released whatever happens."""

    tenant: Tenant
    ctx: ReportingContext
    now: float
    lease_until: float
    has_events: bool
    force: bool
    calls: int = 0
    reported: int = 0
    next_sync_after: float | None = None
    failure: str | None = None

    def run(self) -> SyncResult:
        store = self.ctx.store
        try:
            # Read again under the lease: a run that ended just before it was taken may have
            # made this one unnecessary (its heartbeat just went, say).
            state = store.sync_state(self.tenant.id)
            if state is None:
                return SyncResult(self.tenant.id, SyncOutcome.SKIPPED, detail="unknown tenant")
            if not sync_due(state, self.has_events, self.now, self.force):
                self._release(state)
                return SyncResult(self.tenant.id, SyncOutcome.SKIPPED, detail="not due")
            self._calls()
        except Exception:
            # The store failed along the way: back off and free the lease, if it still can.
            with contextlib.suppress(Exception):
                self._record_failure(_failures(store, self.tenant.id))
            raise
        if self.calls == 0 and self.failure is None:
            self._release(state)
            return SyncResult(self.tenant.id, SyncOutcome.SKIPPED, detail="no time left")
        if self.failure is None:
            store.record_sync(
                self.tenant.id,
                self.ctx.clock(),
                ok=True,
                next_sync_after=self.next_sync_after,
                failures=0,
                retry_after=None,
                lease_until=self.lease_until,
            )
            return SyncResult(self.tenant.id, SyncOutcome.SYNCED, self.calls, self.reported)
        self._record_failure(state.sync_failures)
        return SyncResult(
            self.tenant.id, SyncOutcome.FAILED, self.calls, self.reported, detail=self.failure
        )

    def _calls(self) -> None:
        store, tenant = self.ctx.store, self.tenant
        assert tenant.client_base_url is not None
        url = sync_url(tenant.client_base_url, tenant.client_sync_path)
        try:
            headers = _credentials(tenant, self.ctx.secrets)
        except Exception as error:  # incomplete credentials, or the secret would not open
            self.failure = f"the tenant's client_auth: {_describe(error)}"
            return
        post = self.ctx.poster()
        while self.calls < self.ctx.max_calls and self.ctx.has_time_for_a_call():
            events = store.unreported_events(tenant.id, self.ctx.batch_size)
            entries = [entry for entry in map(report_entry, events) if entry is not None]
            self.calls += 1
            try:
                response = post(
                    url, {"delivery_report": entries}, headers, self.ctx.timeout_seconds
                )
            except Exception as error:  # a network failure, a timeout, a refused destination
                self.failure = _describe(error)
                return
            if not 200 <= response.status < 300:
                self.failure = f"the client answered HTTP {response.status}"
                return
            self.reported += store.mark_reported(tenant.id, events, self.ctx.clock())
            answer = read_answer(response.body)
            self.next_sync_after = answer.next_sync_after
            if answer.queued <= 0 and len(events) < self.ctx.batch_size:
                return

    def _record_failure(self, state_failures: int) -> None:
        failures = state_failures + 1
        at = self.ctx.clock()
        self.ctx.store.record_sync(
            self.tenant.id,
            at,
            ok=False,
            next_sync_after=self.next_sync_after,
            failures=failures,
            retry_after=at + backoff_seconds(failures),
            lease_until=self.lease_until,
        )

    def _release(self, state: SyncState) -> None:
        """Give the lease back, changing nothing else."""
        self.ctx.store.record_sync(
            self.tenant.id,
            self.ctx.clock(),
            ok=False,
            next_sync_after=None,
            failures=state.sync_failures,
            retry_after=state.sync_retry_after,
            lease_until=self.lease_until,
        )


def _failures(store: ReportingStore, tenant_id: str) -> int:
    state = store.sync_state(tenant_id)
    return state.sync_failures if state is not None else 0


def _credentials(tenant: Tenant, secrets: Opener) -> dict[str, str]:
    from mailproxy.delivery.attachments import credential_headers, tenant_endpoint_auth

    auth = tenant_endpoint_auth(tenant, secrets.open)
    return credential_headers(auth.method, auth.user, auth.secret)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
