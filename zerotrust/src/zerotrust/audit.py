"""The audit log: one JSON line per authorized request, saying which permission let it through.

# zt: overprivileged-permissions
A permission granted but never used is attack surface with no benefit. Nobody can tell which ones
those are without a record of what each client actually used, so every API tier appends, for each
request that passed its permission check: when, which service, which client application (`azp`),
delegated or app-only, which tenant, the permission that satisfied the route's check, the route
(its template, never the concrete path, which could carry ids), the method and the final status.
`zt permissions-report` compares these lines with what infra/registrations.yaml grants.

Never a token, never a name or e-mail address: ids only. Requests refused before or at the
permission check are not in this log (they used nothing); they are in the service's own log.
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
    service: str, principal: Principal, permissions: list[str], route: str, method: str, status: int
) -> dict[str, Any]:
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "service": service,
        "client_app_id": principal.azp,
        "token_type": "app-only" if principal.is_app_only else "delegated",
        "tenant_id": principal.tid,
        "permissions": permissions,
        "route": route,
        "method": method,
        "status": status,
    }


class AuditMiddleware:
    """Writes the audit line as the response starts, from what the permission checks left in
    request.state (zerotrust.protect records the principal and the permissions used)."""

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
            used = state.get("permissions_used")
            if isinstance(principal, Principal) and used:
                route = getattr(scope.get("route"), "path", None) or "(unmatched)"
                try:
                    self.audit.write(entry(self.service, principal, list(used), route, scope["method"], status))
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
    """Audit each authorized request of `app` to `path` (None: no audit file, e.g. in unit tests)."""
    if path is not None:
        app.add_middleware(AuditMiddleware, service=service, audit=AuditLog(path))


__all__ = ["AuditLog", "AuditMiddleware", "audit_requests", "entry"]
