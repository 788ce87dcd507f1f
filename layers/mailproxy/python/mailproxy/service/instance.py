"""The instance settings: read them (never the password), change some of them, and wake the
bounce reader so it takes them now (GET/PUT /instance, POST /instance/reload-bounce)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import FieldProblem, InvalidRequest, StaleWrite
from mailproxy.domain.instance import (
    InstanceSettings,
    StoredInstance,
    missing_when_enabled,
)
from mailproxy.secret_box import bounce_password_context
from mailproxy.service.ports import BounceTrigger, InstanceStore, Sealer

# Two admins changing the settings at once: the later one reads again and applies its change
# over the other's, this many times.
UPDATE_ATTEMPTS = 3


def current_instance(store: InstanceStore) -> StoredInstance:
    """The stored settings, or the defaults when none were ever stored."""
    return store.get_instance_settings() or StoredInstance(InstanceSettings())


def get_instance(store: InstanceStore) -> dict[str, Any]:
    """GET /instance: every setting, never the password."""
    return current_instance(store).settings.public_view()


def update_instance(
    change: BaseModel, store: InstanceStore, sealer: Sealer, clock: Clock
) -> dict[str, Any]:
    """PUT /instance: the fields given change (null resets one to its default), the others
    stay. A password left out keeps the stored one; an empty one removes it. Enabling the
    bounce reader needs its host, user and password. Returns the settings as GET shows them."""
    given = {name: getattr(change, name) for name in change.model_fields_set}
    password: SecretStr | None = given.pop("bounce_imap_password", None)
    plaintext = password.get_secret_value() if password is not None else None
    # Sealed once, before the attempts: KMS is not asked again on a retry.
    sealed = sealer.seal(plaintext, bounce_password_context()) if plaintext else None
    for attempt in range(UPDATE_ATTEMPTS):
        stored = store.get_instance_settings()
        current = stored or StoredInstance(InstanceSettings())
        now = clock()
        base = current.settings.model_dump(exclude_unset=False)
        merged = {**base, **{k: v for k, v in given.items() if v is not None}}
        for name, value in given.items():
            if value is None:
                merged.pop(name, None)  # back to its default
        merged["created_at"] = current.settings.created_at or now
        merged["updated_at"] = now
        try:
            settings = InstanceSettings.model_validate(merged)
        except ValidationError as error:
            raise InvalidRequest(
                [
                    FieldProblem(("body", *problem["loc"]), problem["msg"], problem["type"])
                    for problem in error.errors()
                ]
            ) from error
        # Left out: the stored one stays; given empty: sealed is None, it is removed.
        secret = current.sealed_password if password is None else sealed
        missing = missing_when_enabled(settings, has_password=secret is not None)
        if missing:
            raise InvalidRequest(
                [
                    FieldProblem(
                        ("body", name), "Field required when bounce_enabled is true", "missing"
                    )
                    for name in missing
                ]
            )
        try:
            store.put_instance_settings(
                StoredInstance(settings, secret),
                stored.settings.updated_at if stored is not None else None,
            )
        except StaleWrite:
            if attempt == UPDATE_ATTEMPTS - 1:
                raise
            continue
        return settings.public_view()
    raise AssertionError("unreachable")  # pragma: no cover


def reload_bounce(trigger: BounceTrigger) -> dict[str, bool]:
    """POST /instance/reload-bounce: the reader runs now, with the settings as stored."""
    trigger.trigger()
    return {"ok": True}
