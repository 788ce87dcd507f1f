"""A wake-up of the reporter (its SQS body, or the event itself) as a pydantic model.

Apart from the sender's records (mailproxy/sqs_records.py): those need Powertools' parser
models, which the reporter's cold start does without. Built on first use.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class WakeUp(BaseModel):
    """One request to the reporter, in any of its three shapes (its handler's docstring).
    Lenient as a wake-up must be: a tenant id that is not a string names nobody, only `true`
    forces, and what else the event holds (an EventBridge tick's fields) is ignored."""

    model_config = ConfigDict(defer_build=True)

    tenant_id: str | None = None
    tenants: list[str] | None = None
    force: bool = False

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _only_a_string(cls, value: Any) -> Any:
        return value if isinstance(value, str) else None

    @field_validator("force", mode="before")
    @classmethod
    def _only_true(cls, value: Any) -> bool:
        return value is True

    @field_validator("tenants", mode="before")
    @classmethod
    def _the_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return list(dict.fromkeys(t for t in value if isinstance(t, str)))
        return value  # None: every tenant; anything else is refused

    def run(self) -> tuple[list[str] | None, bool]:
        """The tenants to report to (None: every one), and whether forced."""
        if self.tenant_id is not None:
            return [self.tenant_id], self.force
        if "tenants" in self.model_fields_set:
            return self.tenants, self.force
        return None, False  # the scheduled tick
