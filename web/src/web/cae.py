"""A claims challenge answered: the person signs in again to meet it, and what they were doing is done once.

# zt: secure-with-cae
Graph (on every page, dependencies.confirm_with_graph) or the api (relaying the token service or Graph
through on-behalf-of) answered 401 `insufficient_claims`. Every token held for the user is dropped and the
person goes to the identity provider with those claims; a change they were making waits sealed in the
pending sign-in record and is done once when they come back (consent.finish), a page is shown again.
Challenged again by a sign-in made after the event the claims name, the app stops and says so: no loop.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from zerotrust.audit import refuse

from .api_client import ClaimsChallenge
from .consent import Incremental
from .dependencies import SignInRequired, clients_of, page_of
from .pages import error_page, page
from .sessions import Session

log = logging.getLogger("web.cae")


def _requested(claims: str, name: str) -> Any:
    try:
        return json.loads(claims)["access_token"][name]["value"]
    except (ValueError, KeyError, TypeError):
        return None


def _requested_nbf(claims: str) -> float | None:
    try:
        return float(_requested(claims, "nbf"))
    except (TypeError, ValueError):
        return None


async def sign_in_again(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClaimsChallenge)
    refuse(request.state, "claims_challenge")
    c = clients_of(request)
    session: Session | None = getattr(request.state, "session", None)
    if session is None:
        raise SignInRequired(page_of(request))
    if _requested(exc.claims, "acrs") is not None:
        return await _confirm_its_you(request, session, exc)
    nbf = _requested_nbf(exc.claims)
    if nbf is not None and session.created_at >= nbf + 1:
        # This session began after the event the claims name (in whole seconds: a later second), and is
        # still refused: signing in again would only come back here.
        log.warning("claims challenge for a sign-in newer than its event: not retried")
        detail = (
            "You signed in again, but your organization still does not accept the sign-in. "
            "Try again in a moment, or sign out and ask your administrator."
        )
        return error_page(request, 401, "Your sign-in could not be renewed", detail)
    await c.signin.tokens.evict(session)
    asked = Incremental(session.user.oid, session.user.tid, exc.write, reauth=True)
    return await c.signin.login(
        request,
        page_of(request),
        login_hint=session.user.username,
        extra=asked.to_dict(),
        claims_challenge=exc.claims,
    )


# zt: secure-with-cae
async def _confirm_its_you(request: Request, session: Session, exc: ClaimsChallenge) -> Response:
    """Step-up: the api asks for an authentication context (a second factor). The person is told why on a
    page of this app, then goes to the identity provider with the claims; the change waits, sealed, and is
    done once on return (a page is shown again). The tokens held stay: they are still good for the rest."""
    c = clients_of(request)
    write = exc.write
    asked = Incremental(session.user.oid, session.user.tid, write, reauth=True)
    scopes = list(c.settings.api_write_scopes if write is not None else c.settings.api_scopes)
    started = await c.signin.login(
        request,
        page_of(request),
        scopes=scopes,
        login_hint=session.user.username,
        extra=asked.to_dict(),
        claims_challenge=exc.claims,
    )
    what = write.what if write is not None else "opening this page"
    response = page(request, "confirm.html", continue_url=started.headers["location"], what=what)
    # The pending sign-in's cookie, set as the redirect would have set it.
    response.raw_headers.extend((k, v) for k, v in started.raw_headers if k == b"set-cookie")
    return response
