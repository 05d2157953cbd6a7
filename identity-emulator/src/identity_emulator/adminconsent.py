"""The admin consent endpoint: an administrator grants an app its permissions for the whole tenant.

# zt: permissions-require-admin-consent
    GET  /{tenant}/v2.0/adminconsent?client_id=&scope=&redirect_uri=&state=   sign-in, then the admin consent page
    POST /{tenant}/adminconsent                                               Accept or Cancel

As in Entra: the redirect URI must be one the app registered (else the error stays on our page, and
nothing is sent anywhere); only a user with a directory role that may grant consent gets the consent
page, anyone else "Need admin approval"; the answer goes to the app's redirect URI as
admin_consent=True&tenant=&scope=&state= or, declined or failed, with error and error_description too.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from . import pages
from .core import Emulator
from .directory import CONSENT_ROLES, Application, User
from .errors import EntraError
from .forms import emulator
from .pages import error_page, page
from .state import PendingSignIn, SignInSession, new_handle
from .tokens import parse_scopes

router = APIRouter(tags=["pages"])


def _answer(txn: PendingSignIn, params: dict[str, str], tenant_id: str | None) -> Response:
    """Back to the app, in the shape Entra's admin consent endpoint answers."""
    answer = {**params, "admin_consent": "True"}
    if tenant_id is not None:
        answer["tenant"] = tenant_id
    if txn.state is not None:
        answer["state"] = txn.state
    url = pages.with_query(txn.redirect_uri, answer)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


def _error(txn: PendingSignIn, err: EntraError, tenant_id: str | None) -> Response:
    return _answer(txn, {"error": err.error, "error_description": err.description}, tenant_id)


@router.get("/{tenant}/v2.0/adminconsent", response_class=HTMLResponse)
async def adminconsent(tenant: str, request: Request) -> Response:
    emu = emulator(request)
    q = request.query_params
    try:
        # The same exact match as the authorize endpoint: an unregistered URI gets nothing, not even an error.
        app, redirect_uri, path_tenant = pages.requesting_client(emu, tenant, q)
    except EntraError as err:
        return error_page(request, err)
    txn = PendingSignIn(
        id=new_handle(),
        kind="adminconsent",
        path_tenant=tenant,
        client_id=app.application_id,
        scopes=[],
        redirect_uri=redirect_uri,
        state=q.get("state"),
        prompt=q.get("prompt"),
    )
    known = path_tenant.tenant_id if path_tenant else None
    try:
        req = parse_scopes(q.get("scope"), emu.directory)
    except EntraError as err:
        return _error(txn, err, known)
    if req.resource is None:
        return _error(txn, EntraError("invalid_scope", 70011, scope=repr((q.get("scope") or "")[:200])), known)
    txn.scopes = (q.get("scope") or "").split()
    emu.store.prune(time.time(), pages.PENDING_TTL)
    emu.store.pending[txn.id] = txn
    session = pages.signed_in(emu, request)
    if session is not None and txn.prompt not in ("login", "select_account"):
        user = emu.directory.user_by_oid(*session.user)
        if user is not None:
            return after_sign_in(emu, request, txn, user, session)
    return pages.login_page(request, txn)


def after_sign_in(emu: Emulator, request: Request, txn: PendingSignIn, user: User, session: SignInSession) -> Response:
    """Signed in (now, or earlier in this browser): the consent page for an administrator, else a refusal."""
    app = emu.directory.applications[txn.client_id]
    err = pages.tenant_check(emu, txn, user, app)
    if err is not None:
        emu.store.pending.pop(txn.id, None)
        return error_page(request, err)
    txn.user, txn.session_id = (user.tenant_id, user.object_id), session.id
    req = parse_scopes(" ".join(txn.scopes), emu.directory)
    assert req.resource is not None
    if not user.holds(CONSENT_ROLES):
        emu.store.pending.pop(txn.id, None)
        refused = EntraError("access_denied", 90094, scopes=", ".join(txn.scopes), app=app.display_name)
        return page(
            request,
            "admin_approval.html",
            403,
            app=app,
            scopes=sorted(req.scopes) or [f"{req.resource.display_name}: every permission the app registered"],
            description=refused.description,
            back=_error(txn, refused, user.tenant_id).headers["location"],
            signed_in_as=user.upn,
            switch=_sign_in_again(txn),
        )
    scopes, roles = _asked(app, req.resource, req.scopes, req.default)
    return page(
        request,
        "admin_consent.html",
        txn=txn.id,
        tenant=txn.path_tenant,
        app=app,
        user=user,
        organization=emu.directory.tenants[user.tenant_id].display_name,
        resource=req.resource,
        scopes=[req.resource.scopes[s] for s in sorted(scopes)],
        roles=[req.resource.app_roles[r] for r in sorted(roles)],
    )


def _asked(app: Application, resource: Application, scopes: frozenset[str], default: bool) -> tuple[set[str], set[str]]:
    """What the request asks for: the named scopes, or with /.default everything the app registered
    (its delegated scopes, and the application roles it asks for)."""
    if not default:
        return set(scopes), set()
    wanted_roles = {
        r
        for r in app.required_roles.get(resource.application_id, ())
        if "Application" in getattr(resource.app_roles.get(r), "allowed_member_types", ())
    }
    return set(app.required_scopes.get(resource.application_id, ())) & resource.scopes.keys(), wanted_roles


def _sign_in_again(txn: PendingSignIn) -> str:
    """The same request, asking for a sign-in whoever is signed in now ("Sign in with another account")."""
    query = {"client_id": txn.client_id, "scope": " ".join(txn.scopes), "redirect_uri": txn.redirect_uri}
    if txn.state is not None:
        query["state"] = txn.state
    return f"/{txn.path_tenant}/v2.0/adminconsent?" + urlencode({**query, "prompt": "login"})


@router.post("/{tenant}/adminconsent", response_class=HTMLResponse)
async def decide(tenant: str, request: Request) -> Response:
    emu = emulator(request)
    found = await pages.signed_in_form(emu, request)
    if isinstance(found, Response):
        return found
    form, txn, _session, user = found
    emu.store.pending.pop(txn.id, None)
    if txn.kind != "adminconsent":
        return error_page(request, EntraError("invalid_request", 50089))
    app = emu.directory.applications[txn.client_id]
    if not user.holds(CONSENT_ROLES):
        # The role may have gone since the page was shown: the directory now decides, not the page.
        return _error(txn, EntraError("access_denied", 90094, scopes=" ".join(txn.scopes), app=app.display_name), None)
    if form.get("decision") != "accept":
        return _error(txn, EntraError("consent_required", 65004), user.tenant_id)
    req = parse_scopes(" ".join(txn.scopes), emu.directory)
    assert req.resource is not None
    scopes, roles = _asked(app, req.resource, req.scopes, req.default)
    granted = emu.consent.grant_admin(user.tenant_id, app, req.resource, scopes)
    if roles:
        emu.consent.grant_admin_roles(user.tenant_id, app, req.resource)
    emu.store.save()
    return _answer(txn, {"scope": " ".join(req.full_for(sorted(granted)))}, user.tenant_id)
