"""The settings table on moto: the instance settings (conditional on what was read), the
bounce cursor and last run per mailbox, and the run lease."""

from __future__ import annotations

from typing import Any

import pytest

from mailproxy import runtime
from mailproxy.domain.bounces import MailboxCursor
from mailproxy.domain.errors import StaleWrite
from mailproxy.domain.instance import BounceRunRecord, InstanceSettings, StoredInstance


def test_instance_settings_round_trip_and_refuse_a_stale_write(aws: Any) -> None:
    store = runtime.store()
    # Given nothing stored
    assert store.get_instance_settings() is None
    settings = InstanceSettings(name="p", bounce_imap_host="h", created_at=1.0, updated_at=1.0)
    # When they are written once
    store.put_instance_settings(StoredInstance(settings, "sealed!"), None)
    # Then they read back, sealed password included
    stored = store.get_instance_settings()
    assert stored is not None
    assert stored.settings == settings
    assert stored.sealed_password == "sealed!"
    # And a write based on an older read is refused
    newer = settings.model_copy(update={"name": "q", "updated_at": 2.0})
    with pytest.raises(StaleWrite):
        store.put_instance_settings(StoredInstance(newer), None)
    store.put_instance_settings(StoredInstance(newer), 1.0)
    assert store.get_instance_settings().settings.name == "q"  # type: ignore[union-attr]


def test_the_cursor_and_the_last_run_share_an_item_without_overwriting(aws: Any) -> None:
    store = runtime.store()
    assert store.load_bounce_cursor("box") is None
    assert store.last_bounce_run("box") is None
    store.record_bounce_run("box", 50.0)
    store.save_bounce_cursor("box", MailboxCursor(7, 42))
    assert store.load_bounce_cursor("box") == MailboxCursor(7, 42)
    assert store.last_bounce_run("box") == BounceRunRecord(50.0)
    store.record_bounce_run("box", 60.0, "IMAP login failed")
    assert store.last_bounce_run("box") == BounceRunRecord(60.0, "IMAP login failed")
    assert store.load_bounce_cursor("box") == MailboxCursor(7, 42)
    assert store.load_bounce_cursor("other") is None


def test_one_run_holds_the_lease_until_it_gives_it_back_or_it_expires(aws: Any) -> None:
    store = runtime.store()
    assert store.take_bounce_lease("a", now=0.0, until=100.0)
    assert not store.take_bounce_lease("b", now=10.0, until=110.0)
    store.release_bounce_lease("b")  # not b's: nothing happens
    assert not store.take_bounce_lease("b", now=20.0, until=120.0)
    store.release_bounce_lease("a")
    assert store.take_bounce_lease("b", now=30.0, until=130.0)
    # A holder that died: its lease runs out
    assert store.take_bounce_lease("c", now=130.0, until=230.0)
