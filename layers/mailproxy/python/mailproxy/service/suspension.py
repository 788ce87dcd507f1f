"""Suspend and activate a tenant's sending, wholly or by batch."""

from __future__ import annotations

from dataclasses import dataclass

from mailproxy.auth import Principal
from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import BadRequest
from mailproxy.domain.tenant import ALL_BATCHES, ActivationRefused, activate, suspend
from mailproxy.service.housekeeping import tenant_in_scope
from mailproxy.service.ports import Queues, SuspensionStore
from mailproxy.service.scheduling import release_held
from mailproxy.service.tenants import tenant_not_found


@dataclass(frozen=True)
class SuspensionResult:
    tenant_id: str
    batch_code: str  # "*": all of them
    suspended_batches: list[str]
    pending_messages: int


def change_suspension(
    action: str,
    caller: Principal,
    tenant_id: str | None,
    batch_code: str | None,
    store: SuspensionStore,
    clock: Clock,
    queues: Queues,
) -> SuspensionResult:
    """Suspend or activate; activating releases at once what the suspension held."""
    scoped = tenant_in_scope(caller, tenant_id)
    batch_code = batch_code or None  # `?batch_code=` names no batch: all of them
    tenant = store.get_tenant(scoped)
    if tenant is None:
        raise tenant_not_found(scoped)
    try:
        batches = (
            suspend(tenant.suspended_batches, batch_code)
            if action == "suspend"
            else activate(tenant.suspended_batches, batch_code)
        )
    except ActivationRefused as refused:
        raise BadRequest(str(refused)) from refused
    now = clock()
    if not store.patch_tenant(scoped, {"suspended_batches": batches}, now):
        raise tenant_not_found(scoped)
    if action == "activate":
        released = None if batch_code in (None, ALL_BATCHES) else batch_code
        release_held(scoped, released, store, queues, clock=clock)
    counted_batch = None if batch_code in (None, ALL_BATCHES) else batch_code
    return SuspensionResult(
        tenant_id=scoped,
        batch_code=batch_code or ALL_BATCHES,
        suspended_batches=sorted(batches),
        pending_messages=store.count_active(scoped, counted_batch),
    )
