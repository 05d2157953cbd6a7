"""Browser-facing pages: authorize (sign-in and consent), device login, sign-out."""

from __future__ import annotations

import hmac
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from . import stepup
from .core import Emulator
from .directory import Application, Tenant, User
from .errors import EntraError
from .forms import emulator, read_form
from .state import AuthCode, PendingSignIn, SignInSession, new_handle
from .tokens import ScopeRequest, parse_scopes

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

SESSION_COOKIE = "emulator_session"
# A pending sign-in (login page to redirect) must be completed within this many seconds.
PENDING_TTL = 600
# \Z, not $: "$" also matches before a trailing newline, which would let a malformed challenge in.
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}\Z")


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    # Every sign-in form says where the demo password is (the file, never the password itself).
    context.setdefault("password_file", emulator(request).settings.demo_password_file)
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: Request, err: EntraError, status: int = 400) -> HTMLResponse:
    return page(request, "error.html", status, error=err.error, description=err.description, code=err.code)


def signed_in(emu: Emulator, request: Request) -> SignInSession | None:
    sid = request.cookies.get(SESSION_COOKIE)
    return emu.store.sessions.get(sid) if sid else None


def _error_params(txn: PendingSignIn, error: str, description: str) -> dict[str, str]:
    params = {"error": error, "error_description": description}
    if txn.state is not None:
        params["state"] = txn.state
    return params


def _redirect_error(txn: PendingSignIn, error: str, description: str) -> Response:
    return _back_to_client(txn, _error_params(txn, error, description))


def with_query(uri: str, params: dict[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


def _back_to_client(txn: PendingSignIn, params: dict[str, str]) -> Response:
    if txn.response_mode == "form_post":
        return HTMLResponse(_form_post_page(txn.redirect_uri, params), headers={"Cache-Control": "no-store"})
    return RedirectResponse(
        with_query(txn.redirect_uri, params), status_code=302, headers={"Cache-Control": "no-store"}
    )


def _form_post_page(action: str, params: dict[str, str]) -> str:
    rendered = templates.get_template("form_post.html").render(action=action, params=params)
    return str(rendered)


def requesting_client(emu: Emulator, tenant: str, q: Any) -> tuple[Application, str, Tenant | None]:
    """The client `client_id` names (allowed in the path's tenant) and its `redirect_uri`; else EntraError."""
    path_tenant = emu.tenant_for_path(tenant)
    client_id = q.get("client_id") or ""
    app = emu.directory.applications.get(client_id.lower())
    if app is None:
        raise EntraError("unauthorized_client", 700016, client_id=client_id[:100], tenant=tenant[:100])
    if path_tenant is not None:
        emu.check_app_in_tenant(app, path_tenant.tenant_id)
    redirect_uri = q.get("redirect_uri")
    if not redirect_uri:
        raise EntraError("invalid_request", 900971)
    # Exact string match, no wildcards, no normalisation: anything else is an open redirect.
    # The one exception is Entra's (and RFC 8252's): the port of an http loopback URI.
    if not app.accepts_redirect_uri(redirect_uri):
        raise EntraError("invalid_request", 50011, redirect_uri=redirect_uri[:200], client_id=app.application_id)
    return app, redirect_uri, path_tenant


@router.get("/{tenant}/oauth2/v2.0/authorize", response_class=HTMLResponse, tags=["pages"])
async def authorize(tenant: str, request: Request) -> Response:
    emu = emulator(request)
    q = request.query_params
    try:
        app, redirect_uri, _ = requesting_client(emu, tenant, q)
    except EntraError as err:
        # Before the redirect URI is known to be the client's, errors stay on our own page.
        return error_page(request, err)

    response_mode = q.get("response_mode") or "query"
    txn = PendingSignIn(
        id=new_handle(),
        kind="authorize",
        path_tenant=tenant,
        client_id=app.application_id,
        scopes=[],
        redirect_uri=redirect_uri,
        state=q.get("state"),
        nonce=q.get("nonce"),
        code_challenge=q.get("code_challenge") or "",
        response_mode=response_mode if response_mode in ("query", "form_post") else "query",
        prompt=q.get("prompt"),
        login_hint=q.get("login_hint"),
        claims=q.get("claims"),
    )
    if q.get("response_type") != "code":
        return _redirect_error(
            txn, "unsupported_response_type", "AADSTS700054: only response_type=code is enabled (no implicit grant)."
        )
    if response_mode not in ("query", "form_post"):
        return _redirect_error(txn, "invalid_request", "AADSTS9002313: response_mode must be query or form_post.")
    # zt: user-authentication - PKCE S256 on every request, so a stolen code is useless on its own.
    if q.get("code_challenge_method") != "S256" or not _CHALLENGE.match(txn.code_challenge):
        return _redirect_error(txn, "invalid_request", EntraError("invalid_request", 9002325).description)
    try:
        req = parse_scopes(q.get("scope"), emu.directory)
    except EntraError as err:
        return _redirect_error(txn, err.error, err.description)
    if "openid" not in req.oidc:
        req = ScopeRequest(req.resource, req.scopes, req.default, req.oidc | {"openid"})
    txn.scopes = q.get("scope", "").split()
    emu.store.prune(time.time(), PENDING_TTL)
    emu.store.pending[txn.id] = txn

    session = signed_in(emu, request)
    if session is not None and txn.prompt == "select_account":
        from . import accounts  # imports this module

        return accounts.picker(request, txn, session)
    if session is not None and txn.prompt != "login":
        user = emu.directory.user_by_oid(*session.user)
        # A login_hint naming someone else than who is signed in asks for that person's sign-in, as Entra
        # does: an app asking for more permission for alice must not get it for whoever used this browser last.
        if user is not None and (not txn.login_hint or txn.login_hint.strip().lower() == user.upn):
            return continue_sign_in(emu, request, txn, user, session)
    if txn.prompt == "none":
        return _redirect_error(txn, "login_required", EntraError("login_required", 50058).description)
    return login_page(request, txn)


def login_page(request: Request, txn: PendingSignIn, error: str | None = None, status: int = 200) -> Response:
    emu = emulator(request)
    app = emu.directory.applications[txn.client_id]
    return page(
        request,
        "login.html",
        status,
        txn=txn.id,
        tenant=txn.path_tenant,
        app=app,
        username=txn.login_hint or "",
        error=error,
    )


@router.post("/{tenant}/login", response_class=HTMLResponse, tags=["pages"])
async def login(tenant: str, request: Request) -> Response:
    emu = emulator(request)
    try:
        form = await read_form(request)
    except EntraError as err:
        return error_page(request, err, err.status)
    txn = emu.store.pending.get(form.get("txn", ""))
    if txn is None or time.time() - txn.created > PENDING_TTL:
        return error_page(request, EntraError("invalid_request", 50089))
    username = form.get("username", "").strip()
    password = form.get("password", "")
    user = emu.directory.user(username)
    # Smart lockout (lockout.py): a locked account or address is refused before its password is looked at.
    peer = request.client.host if request.client else ""
    locked = emu.sign_in_guard.refusal(user, peer)
    if locked is not None:
        refused = login_page(request, txn, locked.description, 429)
        refused.headers["Retry-After"] = str(locked.retry_after)
        return refused
    if user is None:
        emu.sign_in_guard.failed(None, peer)
        return login_page(
            request, txn, EntraError("invalid_grant", 50034, upn=username[:100], tenant=tenant[:100]).description, 400
        )
    if not hmac.compare_digest(password.encode(), emu.demo_password.encode()):
        emu.sign_in_guard.failed(user, peer)
        return login_page(request, txn, EntraError("invalid_grant", 50126).description, 400)
    emu.sign_in_guard.succeeded(user)
    if (user.tenant_id, user.object_id) in emu.store.admin.disabled:
        return login_page(request, txn, EntraError("invalid_grant", 50057).description, 400)
    # A fresh session id at every sign-in: nothing planted before it survives (session fixation).
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        emu.store.sessions.pop(old, None)
    session = SignInSession(new_handle(), (user.tenant_id, user.object_id), time.time())
    emu.store.sessions[session.id] = session
    response = continue_sign_in(emu, request, txn, user, session)
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="lax", path="/")
    return response


def tenant_check(emu: Emulator, txn: PendingSignIn, user: User, app: Application) -> EntraError | None:
    path_tenant: Tenant | None = emu.directory.tenant(txn.path_tenant)
    if path_tenant is not None and path_tenant.tenant_id != user.tenant_id:
        return EntraError(
            "invalid_grant", 50020, upn=user.upn, tenant=path_tenant.tenant_id, client_id=app.application_id
        )
    if user.tenant_id != emu.directory.home_tenant_id and not app.multi_tenant:
        return EntraError("unauthorized_client", 700016, client_id=app.application_id, tenant=user.tenant_id)
    if (user.tenant_id, user.object_id) in emu.store.admin.disabled:
        return EntraError("invalid_grant", 50057)
    # zt: app-registration - the app signed in to requires assignment: this person must hold a role on it.
    if not app.assigned(user):
        return EntraError("invalid_grant", 50105, app=app.display_name, client_id=app.application_id, upn=user.upn)
    return None


def continue_sign_in(
    emu: Emulator, request: Request, txn: PendingSignIn, user: User, session: SignInSession
) -> Response:
    """After sign-in: tenant rules, then consent, then back to the app (or the device)."""
    if txn.kind == "adminconsent":
        from . import adminconsent  # imports this module

        return adminconsent.after_sign_in(emu, request, txn, user, session)
    app = emu.directory.applications[txn.client_id]
    err = tenant_check(emu, txn, user, app)
    if err is not None:
        from .accounts import picker_url  # imports this module

        # The sign-in stays pending: "Sign in with another account" resumes it as someone else.
        return page(
            request,
            "error.html",
            400,
            error=err.error,
            description=err.description,
            code=err.code,
            another=picker_url(txn) if txn.kind == "authorize" else None,
        )
    txn.user = (user.tenant_id, user.object_id)
    txn.session_id = session.id
    req = parse_scopes(" ".join(txn.scopes), emu.directory)
    consent = emu.consent.check(user, app, req)
    if consent.missing_admin:
        emu.store.pending.pop(txn.id, None)
        err = EntraError("access_denied", 90094, scopes=", ".join(sorted(consent.missing_admin)), app=app.display_name)
        back = None
        if txn.kind == "authorize":
            back = with_query(txn.redirect_uri, _error_params(txn, "access_denied", err.description))
        return page(
            request,
            "admin_approval.html",
            403,
            app=app,
            scopes=sorted(consent.missing_admin),
            description=err.description,
            back=back,
        )
    needs_prompt = consent.missing_user or (txn.prompt == "consent" and req.resource is not None)
    if needs_prompt:
        if txn.prompt == "none":
            return _redirect_error(
                txn,
                "consent_required",
                EntraError("consent_required", 65001, client_id=app.application_id, app=app.display_name).description,
            )
        assert req.resource is not None
        shown = consent.missing_user or frozenset(req.scopes)
        # zt: identity - what is asked now, with descriptions; what was granted before, apart.
        before = emu.consent.granted_scopes(user, app, req.resource) - shown
        return page(
            request,
            "consent.html",
            txn=txn.id,
            tenant=txn.path_tenant,
            app=app,
            user=user,
            resource=req.resource,
            scopes=[req.resource.scopes[s] for s in sorted(shown)],
            granted=[req.resource.scopes[s] for s in sorted(before) if s in req.resource.scopes],
        )
    return _step_up(emu, request, txn, user, session)


# zt: secure-with-cae
def _step_up(emu: Emulator, request: Request, txn: PendingSignIn, user: User, session: SignInSession) -> Response:
    """Conditional Access for the authentication contexts the claims ask for: a second factor, once per
    sign-in frequency (stepup.py); then back to the app."""
    missing = [c for c in stepup.requested(txn.claims) if c not in stepup.met(session)]
    if not missing:
        return _finish(emu, request, txn, user, session)
    context = stepup.CONTEXTS[missing[0]]
    stepup.issue_code(emu, txn.id, user.upn, context.id)
    return _verify_page(request, txn, user, context)


def _verify_page(
    request: Request, txn: PendingSignIn, user: User, context: stepup.AuthContext, error: str | None = None
) -> Response:
    app = emulator(request).directory.applications[txn.client_id]
    return page(
        request,
        "verify.html",
        400 if error else 200,
        txn=txn.id,
        tenant=txn.path_tenant,
        app=app,
        user=user,
        context=context,
        error=error,
    )


async def signed_in_form(
    emu: Emulator, request: Request
) -> tuple[dict[str, str], PendingSignIn, SignInSession, User] | Response:
    """A form posted during a sign-in, counted only from the browser that signed in for that very request."""
    try:
        form = await read_form(request)
    except EntraError as err:
        return error_page(request, err, err.status)
    txn = emu.store.pending.get(form.get("txn", ""))
    session = signed_in(emu, request)
    if txn is None or txn.user is None or session is None or session.id != txn.session_id:
        return error_page(request, EntraError("invalid_request", 50089))
    return form, txn, session, emu.user(txn.user)


@router.post("/{tenant}/verify", response_class=HTMLResponse, tags=["pages"])
async def verify(tenant: str, request: Request) -> Response:
    emu = emulator(request)
    found = await signed_in_form(emu, request)
    if isinstance(found, Response):
        return found
    form, txn, session, user = found
    missing = [c for c in stepup.requested(txn.claims) if c not in stepup.met(session)]
    if not missing:
        return _finish(emu, request, txn, user, session)
    context = stepup.CONTEXTS[missing[0]]
    answer = stepup.check_code(emu, txn.id, form.get("code", ""))
    if answer is None:
        emu.store.pending.pop(txn.id, None)
        return _redirect_error(txn, "access_denied", EntraError("access_denied", 50076).description)
    if not answer:
        return _verify_page(request, txn, user, context, "That code is not the one sent. Check it and try again.")
    session.contexts[context.id] = time.time()
    return _step_up(emu, request, txn, user, session)


def _finish(emu: Emulator, request: Request, txn: PendingSignIn, user: User, session: SignInSession) -> Response:
    emu.store.pending.pop(txn.id, None)
    if txn.kind == "device":
        device = emu.store.devices.get(txn.device_code or "")
        if device is None or device.status != "pending":
            return error_page(request, EntraError("expired_token", 70020))
        device.status, device.user, device.auth_time = "approved", txn.user, session.auth_time
        app = emu.directory.applications[txn.client_id]
        return page(request, "device_done.html", app=app, user=user)
    code = secrets.token_urlsafe(48)
    emu.store.codes[code] = AuthCode(
        client_id=txn.client_id,
        redirect_uri=txn.redirect_uri,
        user=(user.tenant_id, user.object_id),
        scopes=txn.scopes,
        code_challenge=txn.code_challenge,
        nonce=txn.nonce,
        claims=txn.claims,
        auth_time=session.auth_time,
        session_id=session.id,
        family=new_handle(8),
        expires=time.time() + emu.settings.code_lifetime,
    )
    params = {"code": code, "session_state": session.id[:36]}
    if txn.state is not None:
        params["state"] = txn.state
    return _back_to_client(txn, params)


@router.post("/{tenant}/consent", response_class=HTMLResponse, tags=["pages"])
async def consent(tenant: str, request: Request) -> Response:
    emu = emulator(request)
    found = await signed_in_form(emu, request)
    if isinstance(found, Response):
        return found
    form, txn, session, user = found
    app = emu.directory.applications[txn.client_id]
    if form.get("decision") != "accept":
        emu.store.pending.pop(txn.id, None)
        if txn.kind == "device":
            device = emu.store.devices.get(txn.device_code or "")
            if device is not None:
                device.status = "declined"
            return page(request, "device_done.html", app=app, user=user, declined=True)
        return _redirect_error(txn, "access_denied", EntraError("access_denied", 65004).description)
    req = parse_scopes(" ".join(txn.scopes), emu.directory)
    if req.resource is not None:
        c = emu.consent.check(user, app, req)
        emu.consent.record(user, app, req.resource, set(c.missing_user) | set(req.scopes))
    return _step_up(emu, request, txn, user, session)


@router.get("/devicelogin", response_class=HTMLResponse, tags=["pages"])
async def devicelogin_form(request: Request) -> Response:
    return page(request, "device.html")


@router.post("/devicelogin", response_class=HTMLResponse, tags=["pages"])
async def devicelogin(request: Request) -> Response:
    emu = emulator(request)
    try:
        form = await read_form(request)
    except EntraError as err:
        return error_page(request, err, err.status)
    entered = re.sub(r"[\s-]", "", form.get("user_code", "")).upper()
    now = time.time()
    # Compared as bytes: compare_digest raises on a str with non-ASCII characters, which a person may type.
    device = next(
        (
            d
            for d in emu.store.devices.values()
            if hmac.compare_digest(d.user_code.encode(), entered.encode()) and d.status == "pending" and d.expires > now
        ),
        None,
    )
    if device is None:
        return page(
            request,
            "device.html",
            400,
            error="That code is not valid or has expired. Check the code your device shows and try again.",
        )
    txn = PendingSignIn(
        id=new_handle(),
        kind="device",
        path_tenant=device.path_tenant,
        client_id=device.client_id,
        scopes=device.scopes,
        claims=device.claims,
        device_code=device.device_code,
        prompt="login",
    )
    emu.store.pending[txn.id] = txn
    return login_page(request, txn)


@router.get("/{tenant}/oauth2/v2.0/logout", response_class=HTMLResponse, tags=["pages"])
async def logout(tenant: str, request: Request) -> Response:
    emu = emulator(request)
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        emu.store.sessions.pop(sid, None)
    target = request.query_params.get("post_logout_redirect_uri")
    client_id = (request.query_params.get("client_id") or "").lower()
    apps = [a for a in emu.directory.applications.values() if not client_id or a.application_id == client_id]
    if target and any(a.accepts_post_logout_uri(target) for a in apps):
        state = request.query_params.get("state")
        url = with_query(target, {"state": state}) if state else target
        response: Response = RedirectResponse(url, status_code=302)
    else:
        response = page(request, "signed_out.html", unknown_target=bool(target))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
