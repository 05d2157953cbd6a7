"""Asking an administrator to grant a permission for everyone: the identity provider's admin consent endpoint.

# zt: permissions-require-admin-consent
A person can't consent to Tasks.Read.All (AADSTS90094, "needs admin approval"). The app sends an
administrator to `{identity provider}/{tenant}/v2.0/adminconsent` with its client id, the scopes, its
registered redirect URI for this answer, and a fresh `state`. The administrator signs in there and
accepts (only someone with a directory role that may consent for the organization can); the identity
provider sends the browser back with `admin_consent=True&tenant=&scope=&state=`, or with `error=`.

The answer carries no code and no token, so nothing in it proves anything except `state`: it must match
the value this browser was given when it left (a short-lived, HttpOnly, SameSite=Lax cookie; nothing is
stored server-side for a visitor who may not be signed in), or the answer is refused. Even accepted, it
only tells the person what happened: access still comes from the token service, which now issues the
scope (or still refuses it). It does make this process forget the refusals it kept, so the next request for
the scope reaches the token service at once.
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from zerotrust.audit import refuse

from .dependencies import Clients
from .pages import page

# As long as the identity provider keeps a pending sign-in: an answer later than that is not one we wait for.
STATE_SECONDS = 600
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
MAX_FIELD = 2000


def _cookie(c: Clients) -> str:
    # __Host-: Secure, Path=/ and no Domain, so no sibling host can plant a state of its choosing.
    return "__Host-admin-consent" if c.settings.cookie_secure else "admin-consent"


def redirect_uri(c: Clients) -> str:
    """The redirect URI registered for this answer (infra/registrations.yaml, on the app's own origin)."""
    return f"{c.settings.public_origin}/auth/admin-consent"


def start(request: Request, c: Clients) -> Response:
    """Off to the admin consent endpoint, for the organization view's scope, with a state for this browser."""
    session = getattr(request.state, "session", None)
    # The signed-in person's tenant; without one, the administrator's own (they sign in there).
    tenant = session.user.tid if session else c.settings.tenant_id
    state = secrets.token_urlsafe(32)
    query = {
        "client_id": c.settings.client_id,
        "scope": " ".join(c.settings.api_org_scopes),
        "redirect_uri": redirect_uri(c),
        "state": state,
    }
    response = RedirectResponse(f"{c.settings.idp_origin}/{tenant}/v2.0/adminconsent?{urlencode(query)}", 303)
    response.set_cookie(
        _cookie(c),
        state,
        max_age=STATE_SECONDS,
        path="/",
        secure=c.settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response


def finish(request: Request, c: Clients) -> Response:
    """The identity provider's answer: refused unless its state is this browser's; then what it says."""
    q = request.query_params
    expected, got = request.cookies.get(_cookie(c)), q.get("state")
    if not expected or not got or not hmac.compare_digest(expected.encode(), got.encode()):
        refuse(request.state, "admin_consent_state")
        response = page(
            request,
            "admin_consent_result.html",
            400,
            outcome="refused",
            detail="This answer does not belong to a request for admin approval made from this browser "
            "(its state is missing or does not match), so the app ignores it. Ask for approval again.",
        )
    elif q.get("error"):
        response = page(
            request,
            "admin_consent_result.html",
            403,
            outcome="error",
            error=q.get("error", "")[:100],
            detail=q.get("error_description", "")[:MAX_FIELD],
        )
    elif (q.get("admin_consent") or "").lower() != "true" or not _GUID.match(q.get("tenant") or ""):
        response = page(request, "admin_consent_result.html", 400, outcome="refused", detail="The answer is malformed.")
    elif q.get("tenant") not in c.settings.tenants:
        response = page(
            request,
            "admin_consent_result.html",
            403,
            outcome="refused",
            detail="The approval was given in a tenant this app does not serve; it changes nothing here.",
        )
        refuse(request.state, "admin_consent_tenant")
    else:
        scopes = [s.rsplit("/", 1)[-1] for s in (q.get("scope") or "")[:MAX_FIELD].split()]
        # MSAL keeps the token service's refusals for a while (token_caches.HttpCache); this one just stopped
        # being true, so everyone's next request for the scope asks again instead of being told "no" from memory.
        c.signin.tokens.http_cache.forget_refusals()
        response = page(request, "admin_consent_result.html", outcome="granted", tenant=q["tenant"], scopes=scopes)
    # Used once, whatever the answer.
    response.delete_cookie(_cookie(c), path="/", secure=c.settings.cookie_secure, httponly=True, samesite="lax")
    return response
