"""The instance settings use cases over an in-memory store: defaults, partial updates, the
password sealed and never shown, clear errors naming the field, the reload trigger."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from mailproxy.domain.errors import InvalidRequest, StaleWrite
from mailproxy.domain.instance import InstanceChange, StoredInstance, bounce_due
from mailproxy.secret_box import bounce_password_context
from mailproxy.service.instance import get_instance, reload_bounce, update_instance
from tests.support.fakes import FakeSealer


@dataclass
class MemoryInstances:
    stored: StoredInstance | None = None
    # Writes to refuse as stale, as if another admin wrote first.
    stale: int = 0

    def get_instance_settings(self) -> StoredInstance | None:
        return self.stored

    def put_instance_settings(self, stored: StoredInstance, expected: float | None) -> None:
        if self.stale:
            self.stale -= 1
            raise StaleWrite("changed")
        current = self.stored.settings.updated_at if self.stored else None
        assert current == expected
        self.stored = stored


@dataclass
class Trigger:
    calls: list[None] = field(default_factory=list)

    def trigger(self) -> None:
        self.calls.append(None)


def change(**fields: object) -> object:
    return InstanceChange.model_validate(fields)


def test_defaults_before_anything_is_stored() -> None:
    # Given nothing stored / When the settings are read / Then the documented defaults
    view = get_instance(MemoryInstances())
    assert view["bounce_enabled"] is False
    assert view["bounce_imap_port"] == 993
    assert view["bounce_imap_folder"] == "INBOX"
    assert view["bounce_imap_ssl"] is True
    assert view["bounce_poll_interval"] == 60
    assert "bounce_imap_password" not in view


def test_partial_update_keeps_the_rest_and_seals_the_password() -> None:
    # Given a store with a name
    store = MemoryInstances()
    update_instance(change(name="proxy-1"), store, FakeSealer(), lambda: 100.0)
    # When the mailbox is set, with its password
    view = update_instance(
        change(
            bounce_enabled=True,
            bounce_imap_host="imap.example.com",
            bounce_imap_user="bounces",
            bounce_imap_password="s3cret",
        ),
        store,
        FakeSealer(),
        lambda: 200.0,
    )
    # Then the name stays, the password is stored sealed and is shown nowhere
    assert view["name"] == "proxy-1"
    assert view["bounce_imap_host"] == "imap.example.com"
    assert "s3cret" not in str(view)
    assert "password" not in str(view)
    assert store.stored is not None
    assert FakeSealer().open(store.stored.sealed_password or "", bounce_password_context()) == (
        "s3cret"
    )
    assert view["created_at"] == 100.0
    assert view["updated_at"] == 200.0
    # And a change without a password keeps it
    update_instance(change(bounce_poll_interval=300), store, FakeSealer(), lambda: 300.0)
    assert store.stored.sealed_password is not None
    assert get_instance(store)["bounce_poll_interval"] == 300


def test_enabling_without_a_mailbox_names_the_missing_fields() -> None:
    with pytest.raises(InvalidRequest) as refused:
        update_instance(change(bounce_enabled=True), MemoryInstances(), FakeSealer(), lambda: 1.0)
    named = {problem.loc[-1] for problem in refused.value.problems}
    assert named == {"bounce_imap_host", "bounce_imap_user", "bounce_imap_password"}


def test_invalid_values_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        change(bounce_imap_port=70000, bounce_return_path="not an address")
    text = str(refused.value)
    assert "bounce_imap_port" in text
    assert "bounce_return_path" in text


def test_a_concurrent_write_is_read_again_and_applied_over() -> None:
    store = MemoryInstances(stale=1)
    view = update_instance(change(name="x"), store, FakeSealer(), lambda: 5.0)
    assert view["name"] == "x"


def test_reload_asks_the_trigger() -> None:
    trigger = Trigger()
    assert reload_bounce(trigger) == {"ok": True}
    assert len(trigger.calls) == 1


@pytest.mark.parametrize(
    ("last", "interval", "now", "due"),
    [(None, 60, 0.0, True), (0.0, 60, 30.0, False), (0.0, 60, 58.0, True), (0.0, 300, 240, False)],
)
def test_a_run_is_due_after_the_poll_interval(
    last: float | None, interval: int, now: float, due: bool
) -> None:
    assert bounce_due(last, interval, now) is due
