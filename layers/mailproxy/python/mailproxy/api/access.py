"""Who may call what: one table of the api's routes, each with its scope.

Read in two places, both in the api handler: before a route runs (its caller must have the
route's scope) and before a request that failed validation is answered (a caller without the
right to make a request learns nothing of the shape of a valid one). The services check only
which tenant a request is about (auth.scoped_tenant): that is data, not a route.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mailproxy.auth import Principal, require_admin


class Scope(StrEnum):
    PUBLIC = "public"  # no token at all
    # Any valid token: a tenant's is limited to its own tenant wherever the request names one.
    TENANT = "tenant"
    ADMIN = "admin"  # the admin token only (a tenant's token: 403)


@dataclass(frozen=True)
class RouteAccess:
    method: str
    path: str  # as /openapi.json writes it: /tenant/{tenant_id}
    scope: Scope
    # A GET that changes state (0.7's messages/cleanup): the command log records it too.
    changes_state: bool = False

    def matches(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        template = self.path.strip("/").split("/")
        given = path.strip("/").split("/")
        return len(template) == len(given) and all(
            part == segment or (_is_parameter(part) and bool(segment))
            for part, segment in zip(template, given, strict=True)
        )

    def parameters(self, path: str) -> dict[str, str]:
        """The path's parameters by name (the path must match)."""
        return {
            part[1:-1]: segment
            for part, segment in zip(
                self.path.strip("/").split("/"), path.strip("/").split("/"), strict=False
            )
            if _is_parameter(part)
        }


def _is_parameter(part: str) -> bool:
    return part.startswith("{") and part.endswith("}")


ROUTES: tuple[RouteAccess, ...] = (
    RouteAccess("GET", "/health", Scope.PUBLIC),
    RouteAccess("GET", "/metrics", Scope.PUBLIC),
    RouteAccess("GET", "/openapi.json", Scope.PUBLIC),
    RouteAccess("GET", "/docs", Scope.PUBLIC),
    # The link is the credential.
    RouteAccess("GET", "/files/{token}", Scope.PUBLIC),
    RouteAccess("GET", "/status", Scope.TENANT),
    RouteAccess("POST", "/commands/run-now", Scope.TENANT),
    RouteAccess("POST", "/commands/suspend", Scope.TENANT),
    RouteAccess("POST", "/commands/activate", Scope.TENANT),
    RouteAccess("POST", "/commands/add-messages", Scope.TENANT),
    RouteAccess("POST", "/commands/delete-messages", Scope.TENANT),
    RouteAccess("POST", "/commands/cleanup-messages", Scope.TENANT),
    RouteAccess("POST", "/account", Scope.TENANT),
    RouteAccess("GET", "/accounts", Scope.TENANT),
    RouteAccess("DELETE", "/account/{account_id}", Scope.TENANT),
    RouteAccess("GET", "/messages", Scope.TENANT),
    RouteAccess("POST", "/tenant", Scope.ADMIN),
    RouteAccess("GET", "/tenants", Scope.ADMIN),
    RouteAccess("GET", "/tenants/sync-status", Scope.ADMIN),
    RouteAccess("GET", "/tenant/{tenant_id}", Scope.TENANT),
    RouteAccess("PUT", "/tenant/{tenant_id}", Scope.TENANT),
    RouteAccess("DELETE", "/tenant/{tenant_id}", Scope.ADMIN),
    RouteAccess("POST", "/tenant/{tenant_id}/api-key", Scope.ADMIN),
    RouteAccess("DELETE", "/tenant/{tenant_id}/api-key", Scope.ADMIN),
    RouteAccess("GET", "/instance", Scope.ADMIN),
    RouteAccess("PUT", "/instance", Scope.ADMIN),
    RouteAccess("POST", "/instance/reload-bounce", Scope.ADMIN),
    RouteAccess("GET", "/command-log", Scope.ADMIN),
    RouteAccess("GET", "/command-log/export", Scope.ADMIN),
    # genro-mail-proxy 0.7's routes (mailproxy/api/routes_07.py): each its 0.6 twin's scope.
    RouteAccess("GET", "/instance/status", Scope.TENANT),  # GET /status
    RouteAccess("POST", "/instance/run_now", Scope.TENANT),  # POST /commands/run-now
    RouteAccess("POST", "/instance/suspend", Scope.TENANT),  # POST /commands/suspend
    RouteAccess("POST", "/instance/activate", Scope.TENANT),  # POST /commands/activate
    RouteAccess("GET", "/instance/get_sync_status", Scope.ADMIN),  # GET /tenants/sync-status
    RouteAccess("GET", "/instance/get", Scope.ADMIN),  # GET /instance
    RouteAccess("POST", "/instance/update", Scope.ADMIN),  # PUT /instance
    RouteAccess("GET", "/instance/get_bounce_config", Scope.ADMIN),  # GET /instance
    RouteAccess("POST", "/instance/set_bounce_config", Scope.ADMIN),  # PUT /instance
    RouteAccess("POST", "/instance/reload_bounce", Scope.ADMIN),  # POST /instance/reload-bounce
    RouteAccess("POST", "/tenants/add", Scope.ADMIN),  # POST /tenant
    RouteAccess("GET", "/tenants/list", Scope.ADMIN),  # GET /tenants
    RouteAccess("GET", "/tenants/get", Scope.TENANT),  # GET /tenant/{tenant_id}
    RouteAccess("GET", "/tenants/get_suspended_batches", Scope.TENANT),  # GET /tenant/{tenant_id}
    RouteAccess("POST", "/tenants/update", Scope.TENANT),  # PUT /tenant/{tenant_id}
    RouteAccess("POST", "/tenants/delete", Scope.ADMIN),  # DELETE /tenant/{tenant_id}
    RouteAccess("POST", "/tenants/suspend_batch", Scope.TENANT),  # POST /commands/suspend
    RouteAccess("POST", "/tenants/activate_batch", Scope.TENANT),  # POST /commands/activate
    RouteAccess("POST", "/tenants/create_api_key", Scope.ADMIN),  # POST /tenant/{id}/api-key
    RouteAccess("POST", "/tenants/revoke_api_key", Scope.ADMIN),  # DELETE /tenant/{id}/api-key
    RouteAccess("POST", "/accounts/add", Scope.TENANT),  # POST /account
    RouteAccess("GET", "/accounts/list", Scope.TENANT),  # GET /accounts
    RouteAccess("GET", "/accounts/get", Scope.TENANT),  # GET /accounts
    RouteAccess("POST", "/accounts/delete", Scope.TENANT),  # DELETE /account/{account_id}
    RouteAccess("POST", "/messages/add_batch", Scope.TENANT),  # POST /commands/add-messages
    RouteAccess("POST", "/messages/add", Scope.TENANT),  # POST /commands/add-messages
    RouteAccess("GET", "/messages/get", Scope.TENANT),  # GET /messages
    RouteAccess("GET", "/messages/list", Scope.TENANT),  # GET /messages
    RouteAccess("POST", "/messages/delete_batch", Scope.TENANT),  # POST /commands/delete-messages
    RouteAccess("POST", "/messages/delete", Scope.TENANT),  # POST /commands/delete-messages
    # POST /commands/cleanup-messages
    RouteAccess("GET", "/messages/cleanup", Scope.TENANT, changes_state=True),
    RouteAccess("GET", "/command_log/list", Scope.ADMIN),  # GET /command-log
    RouteAccess("GET", "/command_log/get", Scope.ADMIN),  # GET /command-log
    RouteAccess("GET", "/command_log/export", Scope.ADMIN),  # GET /command-log/export
)


def route_access(method: str, path: str) -> RouteAccess | None:
    """The table's row for a request; None for a path the api does not serve. No template
    here matches a path that another row names (each differs in a fixed segment or in
    length), so the first match is the only one."""
    return next((route for route in ROUTES if route.matches(method, path)), None)


def scope_of(method: str, path: str) -> Scope:
    """The scope a request needs. A route the table does not name (none that the api serves:
    a test checks it) needs the admin: a route added without a row is closed, not open."""
    route = route_access(method, path)
    return route.scope if route is not None else Scope.ADMIN


def require_scope(caller: Principal, scope: Scope) -> None:
    """Forbidden when the caller lacks the scope (authentication is the caller's own step)."""
    if scope is Scope.ADMIN:
        require_admin(caller)
