"""Graph's side of the audit log: which delegated permission each Graph call was granted on.

# zt: overprivileged-permissions
The app's own tiers write a line per decision (zerotrust.audit); Microsoft Graph's are in the tenant's
sign-in and audit logs, not the app's. Locally the emulator stands in for Graph, so it writes the same line
to the stack's audit folder: the permission the call used (the least privileged the token held of those
Graph accepts for it) and the ones it would have accepted, so `zt permissions-report` can tell a
permission an app needs from one it holds but could do without.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import Request

STATE_KEY = "graph_use"


@dataclass(frozen=True)
class Use:
    claims: dict[str, Any]
    accepted: tuple[str, ...]  # least privileged first
    route: str

    @property
    def permission(self) -> str | None:
        held = set(str(self.claims.get("scp") or "").split())
        return next((p for p in self.accepted if p in held), None)


def record(request: Request, claims: dict[str, Any], accepted: tuple[str, ...], route: str) -> None:
    """Remember that this request's token was let through on `accepted` (least privileged first)."""
    setattr(request.state, STATE_KEY, Use(claims, accepted, route))


def line(use: Use, method: str, status: int) -> dict[str, Any]:
    """The audit line of one Graph call, in zerotrust.audit's shape."""
    permission = use.permission
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "service": "graph",
        "correlation_id": None,
        "decision": "allow",
        "reason": "permission",
        "tenant_id": use.claims.get("tid"),
        "object_id": use.claims.get("oid"),
        "client_app_id": use.claims.get("azp"),
        "token_type": "delegated",  # a kind of token, not a secret  # nosec B105
        "permissions": [permission] if permission else [],
        "accepted": {permission: list(use.accepted)} if permission else {},
        "route": use.route,
        "method": method,
        "status": status,
    }
