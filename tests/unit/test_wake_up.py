"""The reporter's wake-ups as it reads them: which tenants, forced or not; a tick or any
other event is every tenant whose sync is due."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mailproxy.wake_up import WakeUp


@pytest.mark.parametrize(
    ("event", "run"),
    [
        ({}, (None, False)),
        ({"source": "aws.events", "detail-type": "Scheduled Event"}, (None, False)),
        ({"tenant_id": "acme", "force": True}, (["acme"], True)),
        ({"tenant_id": "acme", "force": "yes"}, (["acme"], False)),
        ({"tenants": ["a", "b", "a", 3]}, (["a", "b"], False)),
        ({"tenants": None}, (None, False)),
        ({"tenants": None, "force": True}, (None, True)),
        ({"tenant_id": 5}, (None, False)),
    ],
)
def test_each_shape_names_its_tenants(event: dict[str, Any], run: object) -> None:
    assert WakeUp.model_validate(event).run() == run


@pytest.mark.parametrize("event", [[], "tick", {"tenants": 5}, {"tenants": "acme"}])
def test_what_names_nothing_readable_is_refused(event: object) -> None:
    with pytest.raises(ValidationError):
        WakeUp.model_validate(event)
