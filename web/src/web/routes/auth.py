"""Sign-in (auth code flow with PKCE, response_mode=form_post) and sign-out."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ..auth import SignInFailed
from ..dependencies import CsrfRejected, clients, optional_session
from ..session import SIGN_IN_TTL, record_key
from ..settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])

# What the identity provider may send back; anything else in the request is ignored.
AUTH_RESPONSE_FIELDS = ("code", "state", "error", "error_description", "error_uri", "session_state")
MAX_NEXT_LENGTH = 512


def safe_next(value: str | None) -> str:  # zt: user-authentication
    """Where to go after sign-in: a path of this app only. Anything else (`//host`, `https://...`,
    backslashes that some browsers read as slashes, control characters) becomes `/`."""
    if not value or len(value) > MAX_NEXT_LENGTH or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    return value


def set_session_cookie(response: Response, settings: Settings, session_id: str) -> None:
    # No Max-Age: the cookie ends with the browser; the server enforces idle and absolute timeouts.
    response.set_cookie(
        settings.session_cookie,
        session_id,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite=settings.sign_in_cookie_samesite if name == settings.sign_in_cookie else "lax",
    )


@router.get("/login")
async def login(request: Request, next: str | None = None) -> Response:  # zt: user-authentication
    c = clients(request)
    flow = await anyio.to_thread.run_sync(c.identity.start_sign_in)
    pending = await c.sessions.begin_sign_in(flow, safe_next(next), request.cookies.get(c.settings.session_cookie))
    response = RedirectResponse(flow["auth_uri"], status_code=302)
    # Names the pending sign-in, nothing more; it must reach the callback even when the identity
    # provider posts there from another site.
    response.set_cookie(
        c.settings.sign_in_cookie,
        pending.id,
        max_age=SIGN_IN_TTL,
        path="/",
        secure=c.settings.cookie_secure,
        httponly=True,
        samesite=c.settings.sign_in_cookie_samesite,
    )
    return response


@router.api_route("/callback", methods=["GET", "POST"])
async def callback(request: Request) -> Response:  # zt: user-authentication
    """The identity provider's answer. No CSRF token here: MSAL checks `state` against the flow this
    browser started, and the flow is used once (a replayed answer finds nothing)."""
    c = clients(request)
    params = await request.form() if request.method == "POST" else request.query_params
    auth_response = {k: v for k in AUTH_RESPONSE_FIELDS if isinstance(v := params.get(k), str)}
    pending = await c.sessions.take_sign_in(request.cookies.get(c.settings.sign_in_cookie))
    if pending is None:
        raise SignInFailed(
            "This sign-in has expired or was already used",
            "The sign-in this answer belongs to was not started in this browser, took too long, "
            "or has already been completed. Please start again.",
        )
    user, token_cache = await anyio.to_thread.run_sync(c.identity.finish_sign_in, pending.flow, auth_response)

    # Session rotation: a new id at every sign-in; whatever session this browser had is deleted.
    current = request.cookies.get(c.settings.session_cookie)
    replaced = [k for k in (pending.replaces, record_key(current) if current else None) if k]
    session = await c.sessions.start(user, token_cache, replaces=replaced)
    for key in replaced:
        c.tokens.forget(key)
    response = RedirectResponse(pending.next, status_code=303)
    set_session_cookie(response, c.settings, session.id)
    clear_cookie(response, c.settings, c.settings.sign_in_cookie)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:  # zt: user-authentication
    """Ends the session here (record and token cache deleted, cookie cleared), then at the identity
    provider, which sends the browser back to the registered post-logout URI."""
    c = clients(request)
    session = await optional_session(request)
    form = await request.form()
    if session is None:
        response = RedirectResponse("/", status_code=303)
    else:
        token = form.get("csrf_token")
        if not session.csrf_ok(token if isinstance(token, str) else None):
            raise CsrfRejected()
        await c.sessions.end(session.id)
        c.tokens.forget(session.key)
        url = await anyio.to_thread.run_sync(c.identity.end_session_url, session.user)
        response = RedirectResponse(url, status_code=302)
    clear_cookie(response, c.settings, c.settings.session_cookie)
    return response
