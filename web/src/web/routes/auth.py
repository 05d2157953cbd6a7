"""Sign-in (auth code flow with PKCE, response_mode=form_post), its answer, and sign-out (web/signin.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import admin_consent, consent, notices
from ..dependencies import ClientsDep, CsrfRejected, OptionalSession
from ..forms import read_form
from ..pages import page
from ..signin import auth_response, safe_next

router = APIRouter(prefix="/auth", tags=["auth"])


# zt: user-authentication
# region quote: login-route
@router.get("/login")
async def login(request: Request, c: ClientsDep, next: str | None = None) -> Response:
    return await c.signin.login(request, safe_next(next))


# endregion


# zt: user-authentication
@router.get("/switch-account")
async def switch_account(request: Request, c: ClientsDep, next: str | None = None) -> Response:
    """A sign-in that asks which account (prompt=select_account): after a refusal (another tenant, an
    unassigned account) the provider's session would otherwise sign the same person in again."""
    return await c.signin.login(request, safe_next(next), prompt="select_account")


# zt: user-authentication
@router.api_route("/callback", methods=["GET", "POST"])
async def callback(request: Request, c: ClientsDep) -> Response:
    """The identity provider's answer. No CSRF token here: MSAL checks `state` against the flow this
    browser started, and the flow is used once (a replayed answer finds nothing)."""
    answer = auth_response(await read_form(request) if request.method == "POST" else request.query_params)
    # region quote: callback
    pending = await c.signin.take(request)
    if pending.extra is not None:
        # zt: acquire-application-authorization-to-access-resources
        # Back from asking for more permission (incremental consent), with a write waiting.
        return await consent.finish(request, c, pending, answer)
    return await c.signin.complete(request, pending, answer)
    # endregion


# zt: permissions-require-admin-consent
@router.get("/admin-consent")
async def admin_consent_answer(request: Request, c: ClientsDep, session: OptionalSession) -> Response:
    """The admin consent endpoint's answer (admin_consent=True&tenant=&scope=&state=, or error=): taken
    only with the state this browser was given when it left (web/admin_consent.py)."""
    return admin_consent.finish(request, c)


# zt: acquire-application-authorization-to-access-resources
@router.get("/declined")
async def declined(request: Request, c: ClientsDep, session: OptionalSession) -> Response:
    """After the person refused a permission: nothing was changed, and they can carry on reading."""
    scopes = [s.rsplit("/", 1)[-1] for s in c.settings.api_write_scopes]
    return page(request, "consent_declined.html", 403, scopes=scopes)


# zt: user-authentication
@router.post("/logout")
async def logout(request: Request, c: ClientsDep, session: OptionalSession) -> Response:
    form = await read_form(request)
    if session is not None and not session.csrf_ok(form.get("csrf_token")):
        raise CsrfRejected()
    if session is not None and c.traces is not None:
        await c.traces.forget(session)
    # The page the identity provider sends the browser back to says so (web/notices.py).
    return notices.tell(await c.signin.logout(request, session), "signed_out", secure=c.settings.cookie_secure)
