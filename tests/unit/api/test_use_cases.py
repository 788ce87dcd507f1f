"""The api's composition root: each use case takes its collaborators from their providers
when it runs, and only those it needs; the time is the clock it was given."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mailproxy.api.use_cases import ApiUseCases, Wiring
from mailproxy.domain.tenant import Tenant

NOW = 1_700_000_000.0


class FakeStore:
    def __init__(self, tenants: list[Tenant]) -> None:
        self.tenants = tenants

    def list_tenants(self) -> list[Tenant]:
        return list(self.tenants)


def wired(store: FakeStore, built: Counter[str]) -> ApiUseCases:
    def provider(name: str, value: Any = None) -> Any:
        def provide() -> Any:
            built[name] += 1
            return value

        return provide

    return ApiUseCases(
        Wiring(
            store=provider("store", store),
            queues=provider("queues"),
            wakeups=provider("wakeups"),
            file_objects=provider("file_objects"),
            secret_box=provider("secret_box"),
            url_policy=provider("url_policy"),
            submission_policy=provider("submission_policy"),
            tenant_keys=provider("tenant_keys"),
            admin_token=provider("admin_token"),
            new_ticket=lambda: "ticket",
            command_log=provider("command_log"),
            bounce_trigger=provider("bounce_trigger"),
            salt=lambda: 0,
            clock=lambda: NOW,
        )
    )


def test_a_use_case_asks_only_for_what_it_uses() -> None:
    # Given use cases over providers that count what they are asked for
    built: Counter[str] = Counter()
    use_cases = wired(FakeStore([Tenant(id="acme", created_at=NOW, updated_at=NOW)]), built)
    # When the tenants are listed twice
    use_cases.list_tenants(active_only=False)
    listed = use_cases.list_tenants(active_only=False)
    # Then only the store was asked for, once per call (its provider caches it)
    assert [tenant.id for tenant in listed] == ["acme"]
    assert built == Counter({"store": 2})


def test_the_time_is_the_clock_it_was_given() -> None:
    # Given a tenant never synced, and use cases whose clock says NOW
    built: Counter[str] = Counter()
    use_cases = wired(FakeStore([Tenant(id="acme", created_at=NOW, updated_at=NOW)]), built)
    # When the sync status is read / Then the next sync is due at NOW
    [row] = use_cases.sync_status().tenants
    assert (row.id, row.next_sync_due, row.in_dnd) == ("acme", int(NOW), False)
