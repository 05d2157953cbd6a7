"""Who may use the admin view: a demo administrator, signed in, and only within their own tenant.

# zt: permissions-require-admin-consent
Two ways in, as in Entra. A person signs in at /admin/signin (the Entra admin center's sign-in; the
session is the emulator's own sign-in session, so the admin consent endpoint knows them too). A script
or a test presents a bearer token the emulator issued for Microsoft Graph with the delegated scope
Directory.AccessAsUser.All, and is then held, as Graph holds it, to what the signed-in person's
directory role allows: the token's `wids`, and the directory now (a role removed, a user disabled or
their sessions revoked counts at once). Anyone else gets 401 (no one signed in) or 403 (not an
administrator, or not one with the role an action needs).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from . import graph_audit
from .directory import ADMIN_ROLES, User
from .errors import EntraError
from .forms import emulator, read_form
from .graph import graph_error, token_claims
from .pages import SESSION_COOKIE, page
from .state import SignInSession, new_handle

router = APIRouter(prefix="/admin", tags=["admin"])

ADMIN_SCOPE = "Directory.AccessAsUser.All"
SIGN_IN = "/admin/signin"


class AdminRefused(Exception):
    """The answer to a request the admin view does not take (main.py returns it as it is)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _for_a_browser(request: Request) -> bool:
    return "authorization" not in request.headers and "text/html" in request.headers.get("accept", "")


def _refused(request: Request, status: int, message: str, user: User | None = None) -> AdminRefused:
    if not _for_a_browser(request):
        code = "InvalidAuthenticationToken" if status == 401 else "Authorization_RequestDenied"
        return AdminRefused(graph_error(status, code, message))
    if status == 401 and request.method == "GET":
        return AdminRefused(RedirectResponse(SIGN_IN, status_code=303, headers={"Cache-Control": "no-store"}))
    return AdminRefused(page(request, "admin_refused.html", status, message=message, user=user))


def _from_token(request: Request) -> User:
    emu = emulator(request)
    claims = token_claims(request, frozenset({ADMIN_SCOPE}))
    if isinstance(claims, JSONResponse):
        raise AdminRefused(claims)
    user = emu.directory.user_by_oid(str(claims["tid"]), str(claims["oid"]))
    if user is None:
        raise _refused(request, 401, "The signed-in user no longer exists.")
    try:
        emu.check_user_active(user, emu.issuer.issued_at(claims))
    except EntraError as err:
        raise _refused(request, 401, err.description) from None
    if not set(claims.get("wids") or ()) & ADMIN_ROLES:
        raise _refused(request, 403, "Insufficient privileges to complete the operation: no administrator role.")
    # zt: overprivileged-permissions - the JSON side of the admin view is Graph's directory part.
    graph_audit.record(request, claims, (ADMIN_SCOPE,), getattr(request.scope.get("route"), "path", "/admin"))
    return user


def _from_session(request: Request) -> User:
    emu = emulator(request)
    sid = request.cookies.get(SESSION_COOKIE)
    session = emu.store.sessions.get(sid) if sid else None
    user = emu.directory.user_by_oid(*session.user) if session else None
    if user is None or (user.tenant_id, user.object_id) in emu.store.admin.disabled:
        raise _refused(request, 401, "Sign in as an administrator of the tenant.")
    return user


async def signed_in_admin(request: Request) -> User:
    """The admin view's gate (every /admin route): the administrator making this request."""
    user = _from_token(request) if "authorization" in request.headers else _from_session(request)
    if not user.holds(ADMIN_ROLES):
        raise _refused(request, 403, f"{user.upn} has no administrator role in the directory.", user)
    request.state.admin = user
    return user


def admin_router() -> APIRouter:
    """A router for admin view routes: none of them answers before signed_in_admin let the request in."""
    return APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(signed_in_admin)])


def admin_of(request: Request) -> User:
    """The administrator that signed_in_admin let through."""
    user: User = request.state.admin
    return user


def needs(roles: frozenset[str]) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A route's own roles, beyond being an administrator at all (least privilege, as Graph asks)."""

    async def check(request: Request) -> None:
        user = admin_of(request)
        if not user.holds(roles):
            raise _refused(request, 403, f"{user.upn}'s directory role does not allow this action.", user)

    return check


def foreign(request: Request, message: str) -> AdminRefused:
    """An action on another tenant than the administrator's own."""
    return _refused(request, 403, message, admin_of(request))


@router.get("/signin", response_class=HTMLResponse)
async def sign_in_page(request: Request) -> Response:
    return page(request, "admin_signin.html")


@router.post("/signin", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """The admin center's sign-in: an administrator gets a sign-in session; anyone else a 403 page."""
    emu = emulator(request)
    try:
        form = await read_form(request)
    except EntraError as err:
        return page(request, "admin_signin.html", err.status, error=err.description)
    username = form.get("username", "").strip()
    user = emu.directory.user(username)
    # Smart lockout as at the sign-in page for apps (lockout.py): one count per account and per address.
    peer = request.client.host if request.client else ""
    locked = emu.sign_in_guard.refusal(user, peer)
    if locked is not None:
        refused = page(request, "admin_signin.html", 429, error=locked.description, username=username[:100])
        refused.headers["Retry-After"] = str(locked.retry_after)
        return refused
    if user is None:
        emu.sign_in_guard.failed(None, peer)
        error = EntraError("invalid_grant", 50034, upn=username[:100], tenant="any").description
        return page(request, "admin_signin.html", 400, error=error, username=username[:100])
    if not hmac.compare_digest(form.get("password", "").encode(), emu.demo_password.encode()):
        emu.sign_in_guard.failed(user, peer)
        return page(request, "admin_signin.html", 400, error=EntraError("invalid_grant", 50126).description)
    emu.sign_in_guard.succeeded(user)
    if (user.tenant_id, user.object_id) in emu.store.admin.disabled:
        return page(request, "admin_signin.html", 400, error=EntraError("invalid_grant", 50057).description)
    if not user.holds(ADMIN_ROLES):
        message = f"{user.upn} has no administrator role in the directory."
        return page(request, "admin_refused.html", 403, message=message, user=user)
    # A fresh session id at every sign-in (session fixation), as at the sign-in page for apps.
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        emu.store.sessions.pop(old, None)
    session = SignInSession(new_handle(), (user.tenant_id, user.object_id), time.time())
    emu.store.sessions[session.id] = session
    response = RedirectResponse("/admin", status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="lax", path="/")
    return response
