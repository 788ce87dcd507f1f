"""Delivery reports: the reporter's core and its Lambda handler, over moto, with messages
delivered by the real sender to real SMTP servers and the tenants' sync endpoints on real
HTTP servers on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.events import LambdaContext, load_handler, sqs_event, sqs_record
from mailproxy.service.reporting import SyncOutcome, run_reports
from tests.support.api_calls import add_all
from tests.support.delivery_clock import FrozenClock
from tests.support.handlers import (
    ADMIN_TOKEN,
    FAKE_AWS,
    ApiClient,
    SenderDriver,
    account_for,
    message,
)
from tests.support.reporting import (
    SyncEndpoint,
    add_events,
    answer,
    reporting_context,
    sync_state,
    unreported_count,
)
from tests.support.smtp_servers import RecordingHandler, SmtpServer
from tests.support.tenants import create_tenant, records_by_id

SYNC = "/mail-proxy/sync"


@pytest.fixture
def loopback(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tenant URLs may point at this machine (as in local mode): the sync endpoints are here."""
    from mailproxy import runtime

    monkeypatch.setenv("MAILPROXY_ALLOW_LOOPBACK_URLS", "1")
    runtime.reset()


@pytest.fixture
def endpoint(loopback: None) -> Iterator[SyncEndpoint]:
    with SyncEndpoint() as server:
        yield server


def a_clock() -> FrozenClock:
    return FrozenClock(time.time())


def outcomes(results: list[Any]) -> dict[str, str]:
    return {result.tenant_id: result.outcome.value for result in results}


# -- what a report holds --------------------------------------------------------------------


def test_reports_arrive_in_event_order_with_the_contract_fields(
    api: ApiClient, sender: SenderDriver, endpoint: SyncEndpoint
) -> None:
    # Given a tenant whose messages were sent, refused (550) and greylisted (451), in that order
    create_tenant(api, "acme", client_base_url=endpoint.base_url())
    refusing = SmtpServer(RecordingHandler(data_reply="550 5.7.1 Rejected as spam"))
    greylisting = SmtpServer(RecordingHandler(data_reply="451 4.7.1 Greylisted, try later"))
    with SmtpServer() as accepting, refusing, greylisting:
        for account_id, server in (("ok", accepting), ("no", refusing), ("later", greylisting)):
            assert api.call("POST", "/account", account_for(server, id=account_id))[0] == 200
        for message_id, account_id in (("m1", "ok"), ("m2", "no"), ("m3", "later")):
            add_all(api, message(message_id, account_id=account_id))
            sender.drain()
    stored = records_by_id(api, "acme")
    assert [stored[m]["status"] for m in ("m1", "m2", "m3")] == ["sent", "error", "deferred"]

    # When the reporter runs
    [result] = run_reports(reporting_context(time.time), None)

    # Then one call brought the three outcomes, in event order, in the contract's fields
    assert (result.outcome, result.calls, result.reported) == (SyncOutcome.SYNCED, 1, 3)
    [call] = endpoint.calls()
    assert (call.method, call.path) == ("POST", SYNC)
    assert call.header("Content-Type") == "application/json"
    assert call.header("Authorization") is None
    [report] = endpoint.reports()
    m3_event = stored["m3"]["history"][0]
    assert report == [
        {"id": "m1", "sent_ts": stored["m1"]["sent_ts"]},
        {"id": "m2", "error_ts": stored["m2"]["error_ts"], "error": stored["m2"]["error"]},
        {
            "id": "m3",
            "deferred_ts": stored["m3"]["deferred_ts"],
            "deferred_reason": m3_event["metadata"]["deferred_reason"],
        },
    ]
    assert stored["m2"]["error"].endswith("(SMTP 550)")
    # and every event is now reported, and the finished messages with them
    after = records_by_id(api, "acme")
    assert all("reported_ts" in e for r in after.values() for e in r["history"])
    assert {m: "reported_ts" in r for m, r in after.items()} == {
        "m1": True,
        "m2": True,
        "m3": False,
    }
    assert unreported_count("acme") == 0


def test_credentials_of_each_method_reach_the_client(
    api: ApiClient, endpoint: SyncEndpoint
) -> None:
    # Given three tenants on one endpoint: bearer, basic and no auth
    base = endpoint.base_url()
    bearer = {"method": "bearer", "token": "t0ken-of-bear"}
    basic = {"method": "basic", "user": "app", "password": "pa ss:wörd"}
    create_tenant(api, "bear", client_base_url=base, client_sync_path="/bear", client_auth=bearer)
    create_tenant(api, "basic", client_base_url=base, client_sync_path="/basic", client_auth=basic)
    create_tenant(api, "open", client_base_url=base, client_sync_path="/open")
    # When the reporter runs (never synced: each is due its first heartbeat)
    results = run_reports(reporting_context(time.time), None)
    # Then each got an empty report with its own credentials
    assert outcomes(results) == dict.fromkeys(("basic", "bear", "open"), "synced")
    [bear] = endpoint.calls("/bear")
    [basic_call] = endpoint.calls("/basic")
    [open_call] = endpoint.calls("/open")
    assert bear.header("Authorization") == "Bearer t0ken-of-bear"
    pair = base64.b64encode("app:pa ss:wörd".encode()).decode()
    assert basic_call.header("Authorization") == f"Basic {pair}"
    assert open_call.header("Authorization") is None
    assert endpoint.reports() == [[], [], []]


def test_an_ambiguous_outcome_is_not_listed_but_leaves_with_its_batch(
    api: ApiClient, endpoint: SyncEndpoint
) -> None:
    # Given an ambiguous event (beyond the contract) between two sent ones
    create_tenant(api, "acme", client_base_url=endpoint.base_url())
    start = int(time.time() * 1000)
    add_events("acme", 1, start_ms=start, prefix="a")
    add_events("acme", 1, start_ms=start + 1, event_type="ambiguous", prefix="b")
    add_events("acme", 1, start_ms=start + 2, prefix="c")
    # When reported
    run_reports(reporting_context(time.time), None)
    # Then the report lists the two the contract knows, and all three are reported
    assert endpoint.reported_ids() == ["a-0000", "c-0000"]
    assert unreported_count("acme") == 0


# -- failures, retries, never twice ---------------------------------------------------------


def test_a_failed_call_leaves_the_events_and_a_later_run_reports_them_once(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer, loopback: None
) -> None:
    with SyncEndpoint([answer({"detail": "down"}, status=500)]) as endpoint:
        # Given a sent message of a tenant whose endpoint fails once, then works
        create_tenant(api, "acme", client_base_url=endpoint.base_url())
        assert api.call("POST", "/account", account_for(smtp_server))[0] == 200
        add_all(api, message("m1"))
        sender.drain()
        clock = a_clock()
        ctx = reporting_context(clock)
        start = clock.now

        # When the first run meets a 500
        [failed] = run_reports(ctx, None)
        # Then nothing is marked reported, a failure is counted and the tenant backs off
        assert (failed.outcome, failed.calls, failed.reported) == (SyncOutcome.FAILED, 1, 0)
        assert failed.detail == "the client answered HTTP 500"
        assert "reported_ts" not in records_by_id(api, "acme")["m1"]
        state = sync_state("acme")
        assert (state.sync_failures, state.sync_retry_after) == (1, start + 60)
        assert state.last_sync_ts is None
        assert state.sync_lease_until is None

        # When a run comes during the backoff
        clock.set(start + 30)
        run_reports(ctx, None)
        # Then it does not call
        assert len(endpoint.calls()) == 1

        # When a run comes after it
        clock.set(start + 61)
        [synced] = run_reports(ctx, None)
        # Then the event is reported, once, and the failures are forgotten
        assert (synced.outcome, synced.reported) == (SyncOutcome.SYNCED, 1)
        assert records_by_id(api, "acme")["m1"]["reported_ts"] == int(start + 61)
        state = sync_state("acme")
        assert (state.sync_failures, state.sync_retry_after) == (0, None)
        assert state.last_sync_ts == start + 61

        # When later runs come, one of them a run-now
        clock.set(start + 62)
        run_reports(ctx, None)
        clock.set(start + 63)
        run_reports(ctx, ["acme"], force=True)
        # Then nothing is reported twice: the run-now carried an empty list
        assert endpoint.reported_ids() == ["m1", "m1"]  # the 500'd call, the 2xx one
        assert endpoint.reports()[1:] == [[{"id": "m1", "sent_ts": ANY_INT}], []]


def test_an_event_is_marked_reported_once(api: ApiClient, endpoint: SyncEndpoint) -> None:
    from mailproxy import runtime

    # Given unreported events, one of a message that is still stored
    create_tenant(api, "acme", client_base_url=endpoint.base_url())
    store = runtime.store()
    add_events("acme", 3, start_ms=int(time.time() * 1000))
    events = store.unreported_events("acme")
    assert [event.message_id for event in events] == ["bulk-0000", "bulk-0001", "bulk-0002"]
    # When they are marked reported, and then marked again (a late, duplicate mark)
    assert store.mark_reported("acme", events, 1_000.0) == 3
    assert store.mark_reported("acme", events, 2_000.0) == 0
    # Then the first mark stands, and no message was brought back by it
    assert store.unreported_events("acme") == []
    stamps = {e.reported_ts for e in store.events_by_message("acme")["bulk-0000"]}
    assert stamps == {1_000.0}
    assert store.get_state("acme", "bulk-0000") is None


class _AnyInt:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, int)


ANY_INT: Any = _AnyInt()


def test_failures_in_a_row_back_off_longer(api: ApiClient, loopback: None) -> None:
    with SyncEndpoint(default=answer(status=503)) as endpoint:
        # Given a tenant with an event whose endpoint keeps failing
        create_tenant(api, "acme", client_base_url=endpoint.base_url())
        add_events("acme", 1, start_ms=int(time.time() * 1000))
        clock = a_clock()
        ctx = reporting_context(clock)
        # When runs come as soon as each backoff allows
        retry_afters = []
        for _ in range(3):
            run_reports(ctx, None)
            retry_after = sync_state("acme").sync_retry_after
            assert retry_after is not None
            retry_afters.append(retry_after - clock.now)
            clock.set(retry_after)
        # Then each waits twice as long as the one before, and the event still waits
        assert retry_afters == [60, 120, 240]
        assert sync_state("acme").sync_failures == 3
        assert len(endpoint.calls()) == 3
        assert unreported_count("acme") == 1


def test_a_destination_the_guard_refuses_is_a_failure_not_a_call(
    api: ApiClient, endpoint: SyncEndpoint, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailproxy import runtime

    # Given a tenant whose sync URL is on loopback, and a deployment that does not allow it
    create_tenant(api, "acme", client_base_url=endpoint.base_url())
    add_events("acme", 1, start_ms=int(time.time() * 1000))
    monkeypatch.setenv("MAILPROXY_ALLOW_LOOPBACK_URLS", "0")
    runtime.reset()
    # When the reporter runs
    [result] = run_reports(reporting_context(time.time), None)
    # Then nothing left the proxy, and the event waits
    assert result.outcome is SyncOutcome.FAILED
    assert "loopback" in (result.detail or "")
    assert endpoint.calls() == []
    assert unreported_count("acme") == 1


# -- the client's answer --------------------------------------------------------------------


def test_queued_calls_again_at_once(api: ApiClient, loopback: None) -> None:
    with SyncEndpoint([answer({"ok": True, "queued": 2})]) as endpoint:
        # Given a client that answers the first call with queued: 2, then plain ok
        create_tenant(api, "acme", client_base_url=endpoint.base_url())
        # When the reporter runs
        [result] = run_reports(reporting_context(time.time), None)
        # Then it called again at once, and stopped when nothing more was queued
        assert (result.outcome, result.calls) == (SyncOutcome.SYNCED, 2)
        assert endpoint.reports() == [[], []]


def test_queued_calls_again_at_most_five_times_a_run(api: ApiClient, loopback: None) -> None:
    with SyncEndpoint(default=answer({"ok": True, "queued": 7})) as endpoint:
        # Given a client that always says it queued more
        create_tenant(api, "acme", client_base_url=endpoint.base_url())
        # When the reporter runs
        [result] = run_reports(reporting_context(time.time), None)
        # Then it made five calls, no more
        assert (result.outcome, result.calls) == (SyncOutcome.SYNCED, 5)
        assert len(endpoint.calls()) == 5


def test_more_than_a_call_of_events_goes_in_calls_of_a_hundred_in_order(
    api: ApiClient, endpoint: SyncEndpoint
) -> None:
    # Given 230 unreported events
    create_tenant(api, "acme", client_base_url=endpoint.base_url())
    start_ms = int(time.time() * 1000) - 10_000
    ids = add_events("acme", 230, start_ms=start_ms, event_type="deferred")
    clock = a_clock()
    # When the reporter runs
    [result] = run_reports(reporting_context(clock), None)
    # Then three calls carried them, 100, 100 and 30, in event order, each once
    assert (result.outcome, result.calls, result.reported) == (SyncOutcome.SYNCED, 3, 230)
    assert [len(report) for report in endpoint.reports()] == [100, 100, 30]
    assert endpoint.reported_ids() == ids
    assert unreported_count("acme") == 0
    # and the next run has nothing to send and no heartbeat due
    clock.set(clock.now + 60)
    run_reports(reporting_context(clock), None)
    assert len(endpoint.calls()) == 3


def test_a_backlog_beyond_five_calls_waits_for_the_next_run(
    api: ApiClient, endpoint: SyncEndpoint
) -> None:
    # Given more events than five calls carry, on a client that takes two a call
    create_tenant(api, "acme", client_base_url=endpoint.base_url())
    ids = add_events("acme", 13, start_ms=int(time.time() * 1000) - 10_000)
    ctx = reporting_context(time.time, batch_size=2)
    # When two runs come
    first = run_reports(ctx, None)
    second = run_reports(ctx, None)
    # Then the first sent ten, the second the rest
    assert [(r.calls, r.reported) for r in first + second] == [(5, 10), (2, 3)]
    assert endpoint.reported_ids() == ids


def test_next_sync_after_holds_the_heartbeat_but_not_events(api: ApiClient, loopback: None) -> None:
    clock = a_clock()
    start = clock.now
    quiet_until = start + 3600
    with SyncEndpoint(default=answer({"ok": True, "next_sync_after": quiet_until})) as endpoint:
        # Given a client that asked not to be called for an hour
        create_tenant(api, "acme", client_base_url=endpoint.base_url())
        ctx = reporting_context(clock)
        run_reports(ctx, None)
        assert sync_state("acme").next_sync_after == quiet_until
        # When the heartbeat interval passes with nothing to report
        clock.set(start + 301)
        run_reports(ctx, None)
        # Then it is not called
        assert len(endpoint.calls()) == 1
        # When there is an event to report
        [event_id] = add_events("acme", 1, start_ms=int(time.time() * 1000))
        clock.set(start + 302)
        run_reports(ctx, None)
        # Then it is called at once
        assert endpoint.reports()[1:] == [[{"id": event_id, "sent_ts": ANY_INT}]]
        # and the heartbeat comes back once the quiet time is over
        clock.set(quiet_until - 1)
        run_reports(ctx, None)
        assert len(endpoint.calls()) == 2
        clock.set(quiet_until)
        run_reports(ctx, None)
        assert len(endpoint.calls()) == 3


# -- the heartbeat, and tenants that are not called -----------------------------------------


def test_an_active_tenant_with_nothing_to_report_is_called_every_300_seconds(
    api: ApiClient, endpoint: SyncEndpoint
) -> None:
    # Given an active tenant, an inactive one and one without a URL, all with nothing to report
    base = endpoint.base_url()
    create_tenant(api, "acme", client_base_url=base)
    create_tenant(api, "asleep", client_base_url=base, client_sync_path="/asleep", active=False)
    create_tenant(api, "nourl")
    clock = a_clock()
    start = clock.now
    ctx = reporting_context(clock)
    # When the reporter runs every minute for ten minutes
    called_at = []
    for minute in range(11):
        clock.set(start + 60 * minute)
        for result in run_reports(ctx, None):
            if result.calls:
                called_at.append((result.tenant_id, 60 * minute))
    # Then the active tenant got an empty report at once and every 300 s, the others none
    assert called_at == [("acme", 0), ("acme", 300), ("acme", 600)]
    assert [call.path for call in endpoint.calls()] == [SYNC] * 3
    assert endpoint.reports() == [[], [], []]


def test_a_tenant_without_a_url_has_its_events_marked_reported(
    api: ApiClient, sender: SenderDriver, smtp_server: SmtpServer, loopback: None
) -> None:
    # Given a tenant with no client_base_url whose message was sent
    create_tenant(api, "quiet")
    account = account_for(smtp_server, tenant_id="quiet")
    assert api.call("POST", "/account", account)[0] == 200
    add_all(api, message("m1", tenant_id="quiet"))
    sender.drain()
    # When the reporter runs
    [result] = run_reports(reporting_context(time.time), None)
    # Then there was nobody to call, and the event is marked reported (retention may go on)
    assert (result.outcome, result.calls, result.reported) == (SyncOutcome.MARKED, 0, 1)
    record = records_by_id(api, "quiet")["m1"]
    assert "reported_ts" in record
    assert all("reported_ts" in event for event in record["history"])
    assert api.call(
        "POST",
        "/commands/cleanup-messages",
        {"older_than_seconds": 0},
        query="tenant_id=quiet",
    ) == (200, {"ok": True, "removed": 1})


# -- one slow client, two runs at once -----------------------------------------------------------


def test_a_slow_client_times_out_and_the_next_tenant_is_still_synced(
    api: ApiClient, loopback: None
) -> None:
    with (
        SyncEndpoint(hold=10) as slow,
        SyncEndpoint() as quick,
    ):
        # Given a tenant whose endpoint answers after 10 s, and another one
        create_tenant(api, "a-slow", client_base_url=slow.base_url())
        create_tenant(api, "b-quick", client_base_url=quick.base_url())
        add_events("a-slow", 1, start_ms=int(time.time() * 1000))
        # When the reporter runs with a call timeout of half a second
        began = time.monotonic()
        results = run_reports(reporting_context(time.time, timeout_seconds=0.5), None)
        elapsed = time.monotonic() - began
        # Then the slow one failed on its timeout, long before its answer, and the other synced
        assert outcomes(results) == {"a-slow": "failed", "b-quick": "synced"}
        assert "timed out" in (results[0].detail or "")
        assert elapsed < 5
        assert len(quick.calls()) == 1
        # and the slow one's event waits for its retry
        assert unreported_count("a-slow") == 1
        assert sync_state("a-slow").sync_failures == 1


def test_a_run_meeting_a_sync_in_flight_leaves_the_tenant_to_it(
    api: ApiClient, loopback: None
) -> None:
    with SyncEndpoint(hold=5) as endpoint:
        # Given a run whose call the client holds
        create_tenant(api, "acme", client_base_url=endpoint.base_url())
        add_events("acme", 1, start_ms=int(time.time() * 1000))
        ctx = reporting_context(time.time)
        first: list[Any] = []
        worker = threading.Thread(target=lambda: first.extend(run_reports(ctx, None)))
        worker.start()
        assert endpoint.arrived.wait(5)
        # When another run (a run-now, even) comes meanwhile
        [second] = run_reports(ctx, ["acme"], force=True)
        # Then it finds the lease taken and makes no call
        assert second.outcome is SyncOutcome.BUSY
        endpoint._closing.set()  # let the client answer
        worker.join(10)
        assert outcomes(first) == {"acme": "synced"}
        assert len(endpoint.calls()) == 1
        assert sync_state("acme").sync_lease_until is None


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The AWS emulation of local mode as a server on loopback: conditional writes from many
    threads are real concurrent requests, atomic as DynamoDB's are."""
    import boto3

    from infra.local.aws_server import LocalAwsServer
    from infra.local.provision import provision
    from mailproxy import runtime

    server = LocalAwsServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    monkeypatch.setenv("MAILPROXY_ALLOW_LOOPBACK_URLS", "1")
    names = provision(boto3.Session())
    monkeypatch.setenv("MAILPROXY_RESOURCES", names.to_json())
    monkeypatch.setenv("MAILPROXY_ADMIN_TOKEN", ADMIN_TOKEN)
    runtime.reset()
    try:
        yield names
    finally:
        runtime.reset()
        server.stop()


def test_two_runs_at_once_make_one_call(moto_server: Any) -> None:
    with SyncEndpoint(hold=0.5) as endpoint:
        # Given a tenant with an event to report
        api = ApiClient(load_handler("api"))
        create_tenant(api, "acme", client_base_url=endpoint.base_url())
        add_events("acme", 1, start_ms=int(time.time() * 1000))
        # When two reporter runs (two Lambda invocations) start at the same moment
        start = threading.Barrier(2)
        results: list[Any] = []

        def run() -> None:
            ctx = reporting_context(time.time)
            start.wait()
            results.extend(run_reports(ctx, None))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        # Then the client got one call, and the event was reported once
        assert len(endpoint.calls()) == 1
        assert sorted(r.outcome.value for r in results) in (
            ["busy", "synced"],
            ["skipped", "synced"],  # the second came after the first had finished
        )
        assert unreported_count("acme") == 0


# -- the handler ----------------------------------------------------------------------------


def test_the_handler_takes_the_tick_a_run_now_and_a_wake(
    api: ApiClient, endpoint: SyncEndpoint
) -> None:
    handler = load_handler("reporter")
    base = endpoint.base_url()
    create_tenant(api, "acme", client_base_url=base, client_sync_path="/acme")
    create_tenant(api, "beta", client_base_url=base, client_sync_path="/beta")
    tick = {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "2024-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/mailproxy-tick"],
        "detail": {},
    }
    # The minute tick: every tenant that is due (both, never synced)
    assert handler.lambda_handler(tick, LambdaContext()) == {"synced": 2, "failed": 0}
    # A wake after deliveries: a tenant with nothing new is not called again so soon
    assert handler.lambda_handler({"tenants": ["acme"]}, LambdaContext()) == {
        "synced": 0,
        "failed": 0,
    }
    # ... one with a new outcome is
    [event_id] = add_events("acme", 1, start_ms=int(time.time() * 1000))
    assert handler.lambda_handler({"tenants": ["acme", "nobody"]}, LambdaContext()) == {
        "synced": 1,
        "failed": 0,
    }
    assert endpoint.reported_ids("/acme") == [event_id]
    # A run-now for one tenant: called at once, though it was just synced
    assert handler.lambda_handler({"tenant_id": "beta", "force": True}, LambdaContext()) == {
        "synced": 1,
        "failed": 0,
    }
    assert len(endpoint.calls("/beta")) == 2
    # and a failing client is counted
    endpoint.script.append(answer(status=502))
    assert handler.lambda_handler({"tenant_id": "beta", "force": True}, LambdaContext()) == {
        "synced": 0,
        "failed": 1,
    }


def test_the_handler_takes_a_batch_of_wake_ups_from_its_queue(
    api: ApiClient, endpoint: SyncEndpoint
) -> None:
    handler = load_handler("reporter")
    base = endpoint.base_url()
    for tenant_id in ("acme", "beta", "gamma"):
        create_tenant(api, tenant_id, client_base_url=base, client_sync_path=f"/{tenant_id}")
    # Given all three just synced, then news for acme
    assert handler.lambda_handler({}, LambdaContext()) == {"synced": 3, "failed": 0}
    [event_id] = add_events("acme", 1, start_ms=int(time.time() * 1000))
    arn = "arn:aws:sqs:us-east-1:000000000000:mailproxy-wakeups"
    bodies = [
        {"tenants": ["acme"]},  # a sender delivered for acme
        {"tenants": ["beta"]},  # ... and for beta, whose news is already out
        {"tenants": ["gamma"], "force": True},  # gamma's own run-now
        "{not json",  # unreadable: ignored
    ]
    records = [
        sqs_record(b if isinstance(b, str) else json.dumps(b), arn, f"r{n}", f"m{n}")
        for n, b in enumerate(bodies)
    ]
    # When the wake-up queue hands them over in one batch
    summary = handler.lambda_handler(sqs_event(records), LambdaContext())
    # Then acme reported its news, gamma was called at once, beta had nothing due
    assert summary == {"synced": 2, "failed": 0}
    assert endpoint.reports("/acme")[1:] == [[{"id": event_id, "sent_ts": ANY_INT}]]
    assert endpoint.reports("/gamma")[1:] == [[]]
    assert len(endpoint.calls("/beta")) == 1


# -- retention ------------------------------------------------------------------------------


def test_a_reported_finished_message_expires_after_the_retention_and_nothing_else_does(
    api: ApiClient, sender: SenderDriver, endpoint: SyncEndpoint, aws: Any
) -> None:
    import boto3

    from mailproxy.domain.reporting import RETENTION_SECONDS
    from mailproxy.service.reporting import run_reports

    # Given a sent message and a greylisted one (deferred, not finished), both reported
    create_tenant(api, "acme", client_base_url=endpoint.base_url())
    greylisting = SmtpServer(RecordingHandler(data_reply="451 4.7.1 Greylisted, try later"))
    with SmtpServer() as accepting, greylisting:
        for account_id, server in (("ok", accepting), ("later", greylisting)):
            assert api.call("POST", "/account", account_for(server, id=account_id))[0] == 200
        add_all(api, message("done", account_id="ok"), message("waiting", account_id="later"))
        sender.drain()
    clock = a_clock()
    run_reports(reporting_context(clock), ["acme"])
    # Then the finished one, its body and its events carry an expiry a retention away
    dynamodb = boto3.client("dynamodb")

    def expiry(table: str, key: dict[str, Any]) -> int | None:
        item = dynamodb.get_item(TableName=aws.tables[table], Key=key).get("Item", {})
        return int(item["expires_at"]["N"]) if "expires_at" in item else None

    done = {"tenant_id": {"S": "acme"}, "id": {"S": "done"}}
    waiting = {"tenant_id": {"S": "acme"}, "id": {"S": "waiting"}}
    expected = int(clock() + RETENTION_SECONDS)
    assert expiry("messages", done) == expected
    assert expiry("bodies", done) == expected
    # and a message still on its way never does (its reported deferral aside)
    assert expiry("messages", waiting) is None
    assert expiry("bodies", waiting) is None
