"""Sign-in (auth code flow with PKCE, response_mode=form_post) and sign-out."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ..api_client import ApiError
from ..auth import SignInFailed
from ..consent import ConsentRequired, Incremental, PendingWrite
from ..dependencies import Clients, CsrfRejected, SignInRequired, clients, optional_session
from ..forms import read_form
from ..pages import error_page, page
from ..session import SIGN_IN_TTL, PendingSignIn, record_key
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
    return _to_identity_provider(c, flow, pending, 302)


async def ask_consent(request: Request, exc: Exception) -> Response:
    """ConsentRequired, raised by a write: to the identity provider for the write scope alone.

    # zt: acquire-application-authorization-to-access-resources
    The write rides along in the pending sign-in record (server-side, sealed, used once)."""
    assert isinstance(exc, ConsentRequired)
    c = clients(request)
    return await ask_for(request, c.settings.api_write_scopes, "/tasks", exc.write)


async def ask_for(
    request: Request, scopes: list[str], next_path: str, write: PendingWrite | None = None
) -> Response:  # zt: acquire-application-authorization-to-access-resources
    """An interactive request for `scopes`, by the signed-in person, coming back to `next_path`."""
    c = clients(request)
    session = getattr(request.state, "session", None)
    if session is None:
        raise SignInRequired(next_path)
    flow = await anyio.to_thread.run_sync(c.identity.start_sign_in, scopes, session.user.username)
    incremental = Incremental(session.user.oid, session.user.tid, write)
    pending = await c.sessions.begin_sign_in(
        flow, next_path, request.cookies.get(c.settings.session_cookie), incremental=incremental.to_dict()
    )
    return _to_identity_provider(c, flow, pending, 303 if request.method == "POST" else 302)


def _to_identity_provider(c: Clients, flow: dict[str, Any], pending: PendingSignIn, status: int) -> Response:
    response = RedirectResponse(flow["auth_uri"], status_code=status)
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
    params = await read_form(request) if request.method == "POST" else request.query_params
    auth_response = {k: v for k in AUTH_RESPONSE_FIELDS if isinstance(v := params.get(k), str)}
    pending = await c.sessions.take_sign_in(request.cookies.get(c.settings.sign_in_cookie))
    if pending is None:
        raise SignInFailed(
            "This sign-in has expired or was already used",
            "The sign-in this answer belongs to was not started in this browser, took too long, "
            "or has already been completed. Please start again.",
        )
    if pending.incremental is not None:
        return await _finish_consent(request, c, pending, auth_response)
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


async def _finish_consent(
    request: Request, c: Clients, pending: PendingSignIn, auth_response: dict[str, str]
) -> Response:  # zt: acquire-application-authorization-to-access-resources
    """Back from the consent prompt: do the waiting write (if any) once, for the user who asked."""
    asked = Incremental.from_dict(pending.incremental)
    try:
        user, token_cache = await anyio.to_thread.run_sync(c.identity.finish_sign_in, pending.flow, auth_response)
    except SignInFailed:
        if auth_response.get("error") in ("access_denied", "consent_required", "interaction_required"):
            # Refused at the prompt: the write is dropped with the flow, the session is untouched.
            declined = "/auth/declined" if asked is not None and asked.write is not None else pending.next
            response: Response = RedirectResponse(declined, status_code=303)
            clear_cookie(response, c.settings, c.settings.sign_in_cookie)
            return response
        raise
    if asked is None or (user.oid, user.tid) != (asked.oid, asked.tid):
        raise SignInFailed(
            "Nothing was changed",
            "The permission was answered by a different account than the one that asked for it, "
            "so the waiting change was dropped. Sign in again with your own account.",
            status=403,
        )
    # A new session id (rotation, as at every sign-in), holding the tokens that now include write.
    current = request.cookies.get(c.settings.session_cookie)
    replaced = [k for k in (pending.replaces, record_key(current) if current else None) if k]
    session = await c.sessions.start(user, token_cache, replaces=replaced)
    for key in replaced:
        c.tokens.forget(key)
    request.state.session = session
    try:
        if asked.write is not None:
            got = await c.tokens.acquire(session, c.settings.api_write_scopes)
            if got is None or got.token is None:
                raise ApiError(502, "No permission to write", "Write was granted but no token came with it.")
            await asked.write.perform(c.api, got.token)
        response = RedirectResponse(pending.next, status_code=303)
    except ApiError as err:
        response = error_page(request, err.status, err.title, err.detail, retry="/tasks")
    set_session_cookie(response, c.settings, session.id)
    clear_cookie(response, c.settings, c.settings.sign_in_cookie)
    return response


@router.get("/declined")
async def declined(request: Request) -> Response:  # zt: acquire-application-authorization-to-access-resources
    """After the person refused a permission: nothing was changed, and they can carry on reading."""
    await optional_session(request)
    scopes = [s.rsplit("/", 1)[-1] for s in clients(request).settings.api_write_scopes]
    return page(request, "consent_declined.html", 403, scopes=scopes)


@router.post("/logout")
async def logout(request: Request) -> Response:  # zt: user-authentication
    """Ends the session here (record and token cache deleted, cookie cleared), then at the identity
    provider, which sends the browser back to the registered post-logout URI."""
    c = clients(request)
    session = await optional_session(request)
    form = await read_form(request)
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
