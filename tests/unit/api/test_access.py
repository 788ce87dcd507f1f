"""The route table: which row a request falls on, and what its scope asks of the caller."""

from __future__ import annotations

import pytest

from mailproxy.api.access import Scope, require_scope, route_access, scope_of
from mailproxy.auth import ADMIN, Forbidden, Principal


@pytest.mark.parametrize(
    ("method", "path", "row"),
    [
        ("GET", "/tenants/sync-status", "/tenants/sync-status"),
        ("GET", "/tenant/acme", "/tenant/{tenant_id}"),
        ("DELETE", "/tenant/acme/api-key", "/tenant/{tenant_id}/api-key"),
        ("GET", "/files/abc", "/files/{token}"),
        ("DELETE", "/account/main", "/account/{account_id}"),
    ],
)
def test_a_request_falls_on_its_row(method: str, path: str, row: str) -> None:
    found = route_access(method, path)
    assert found is not None
    assert found.path == row


def test_path_parameters_are_read_by_name() -> None:
    found = route_access("POST", "/tenant/acme/api-key")
    assert found is not None
    assert found.parameters("/tenant/acme/api-key") == {"tenant_id": "acme"}


def test_an_empty_segment_or_another_method_is_no_match() -> None:
    assert route_access("GET", "/tenant/") is None
    assert route_access("PATCH", "/tenant/acme") is None


def test_a_route_without_a_row_is_the_admins() -> None:
    # A route added to the handler but not to the table is closed, not open
    assert scope_of("GET", "/not-in-the-table") is Scope.ADMIN


def test_only_the_admin_scope_refuses_a_tenant() -> None:
    tenant = Principal(tenant_id="acme")
    require_scope(tenant, Scope.TENANT)
    require_scope(tenant, Scope.PUBLIC)
    require_scope(ADMIN, Scope.ADMIN)
    with pytest.raises(Forbidden):
        require_scope(tenant, Scope.ADMIN)
