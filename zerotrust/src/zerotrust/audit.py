"""The audit log: one JSON line per authentication and authorization decision, refusals included.

# zt: identity-iam-development-best-practices
Assume breach: when something goes wrong, the first questions are who did what, through which app, and
what was refused. Every tier appends, for each request it decided on: when, which service, the decision
(allow or deny) and its reason, which tenant and object id, which client application (`azp`), delegated
or app-only, the permissions used (or, refused, the ones required) with what each check would have
accepted, the route (its template, never the concrete path, which could carry ids), the method, the final
status and the correlation id (the W3C trace id, the same in every tier: zerotrust.tracing).

# zt: overprivileged-permissions
A permission granted but never used, or broader than every call made with it needed, is attack surface
with no benefit; `zt permissions-report` compares the allowed lines' permissions with what
infra/registrations.yaml grants.

Never a token, a code, a name or an e-mail address: ids, and reasons from this code's own vocabulary.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .tokens import Principal

log = logging.getLogger("zerotrust.audit")


class AuditLog:
    """Appends JSON lines to `path` (created owner-only); one write per line, so lines never interleave.

    One descriptor for the life of the process: a line costs a single write(2) on the event loop, not an
    open and a close as well. O_APPEND puts every line at the current end, so a rotation that copies and
    truncates the file in place (logrotate's copytruncate) keeps working without a restart.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd: int | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._fd = fd
            weakref.finalize(self, os.close, fd)
        return self._fd

    def write(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n").encode()
        with self._lock:
            os.write(self._descriptor(), line)


def entry(
    service: str,
    *,
    decision: str,
    reason: str,
    principal: Principal | None,
    user: tuple[str, str] | None,
    permissions: list[str],
    required: list[str],
    route: str,
    method: str,
    status: int,
    correlation_id: str | None,
    accepted: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """One audit line. `accepted`: for each permission used, what the check would have taken (least
    privileged first), for `zt permissions-report` to find a permission broader than the calls needed."""
    tenant, oid = (principal.tid, principal.oid) if principal else (user or (None, None))
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "service": service,
        "correlation_id": correlation_id,
        "decision": decision,
        "reason": reason,
        "tenant_id": tenant,
        "object_id": oid,
        "client_app_id": principal.azp if principal else None,
        "token_type": ("app-only" if principal.is_app_only else "delegated") if principal else None,
        "permissions": permissions,
        **({"accepted": accepted} if accepted else {}),
        **({"required": required} if required else {}),
        "route": route,
        "method": method,
        "status": status,
    }


def refuse(state: Any, reason: str, required: tuple[str, ...] | list[str] = ()) -> None:
    """Mark the request being answered as refused, for its audit line (`state`: request.state or the
    ASGI scope's state dict)."""
    if isinstance(state, dict):
        state["audit_refusal"] = (reason, list(required))
    else:
        state.audit_refusal = (reason, list(required))


def decided(state: Any, tenant_id: str, object_id: str, reason: str = "session") -> None:
    """Mark the request as made by this user (a tier with sessions rather than tokens: the web app)."""
    state.audit_user = (tenant_id, object_id)
    state.audit_reason = reason


class AuditMiddleware:
    """Writes the audit line as the response starts, from what the checks left in the request's state:
    the principal and permissions used (zerotrust.protect), a session's user (`decided`), or a refusal
    (`refuse`). A request nothing decided on (a public page, /healthz) has no line."""

    def __init__(self, app: ASGIApp, service: str, audit: AuditLog) -> None:
        self.app = app
        self.service = service
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        written = False

        def write(status: int) -> None:
            nonlocal written
            written = True
            state = scope.get("state") or {}
            principal = state.get("principal")
            principal = principal if isinstance(principal, Principal) else None
            user, refusal = state.get("audit_user"), state.get("audit_refusal")
            if principal is None and user is None and refusal is None:
                return
            if refusal is None and status in (401, 403):
                refusal = (f"refused_{status}", [])
            reason, required = refusal or (state.get("audit_reason", "permission"), [])
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            line = entry(
                self.service,
                decision="deny" if refusal else "allow",
                reason=reason,
                principal=principal,
                user=user,
                # Used: those that passed the permission check, even if the route refused afterwards.
                permissions=list(state.get("permissions_used") or []),
                required=required,
                route=route,
                method=scope["method"],
                status=status,
                correlation_id=state.get("correlation_id"),
                accepted=dict(state.get("permissions_accepted") or {}),
            )
            try:
                self.audit.write(line)
            except OSError as exc:
                # Losing an audit line must be visible, but must not fail the caller's request.
                log.error("could not write the audit log %s: %s", self.audit.path, exc)

        async def audited(message: Message) -> None:
            # Written before the response leaves: once a caller has its answer, the line is there.
            if message["type"] == "http.response.start" and not written:
                write(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, audited)
        finally:
            if not written:
                write(500)  # the app raised before answering; the 500 goes out from further up


def audit_requests(app: FastAPI, service: str, path: Path | None) -> None:
    """Audit each decision `app` makes to `path` (None: no audit file, e.g. in unit tests)."""
    if path is not None:
        app.add_middleware(AuditMiddleware, service=service, audit=AuditLog(path))


__all__ = ["AuditLog", "AuditMiddleware", "audit_requests", "decided", "entry", "refuse"]
