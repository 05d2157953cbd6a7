"""Rendering: one Jinja2 environment (autoescaped), the page helper and the error page."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.routing import iter_route_contexts
from fastapi.templating import Jinja2Templates
from zerotrust.correlation import correlation_id

from . import notices
from .dependencies import clients_of
from .display import code_spans, when
from .tour import Article, load_tour

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
# Templates ship with the code and never change while it runs: no file-system check on every render.
templates.env.auto_reload = False
# Every time shown goes through `when`; the tour's text through `code_spans`.
templates.env.filters.update(when=when, code_spans=code_spans)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page; it knows who is signed in (for the header) from the session the request loaded."""
    session = getattr(request.state, "session", None)
    settings = clients_of(request).settings
    context.setdefault("attack_lab", settings.attack_lab)
    context.setdefault("notice", notices.read(request, secure=settings.cookie_secure))
    context.setdefault("user", session.user if session else None)
    # The name Graph gave for this user on this request (dependencies.confirm_with_graph), if it was asked.
    profile = getattr(request.state, "profile", None)
    context.setdefault("display_name", profile.get("displayName") if isinstance(profile, dict) else None)
    context.setdefault("csrf_token", session.csrf_token if session else None)
    # zt: identity-zero-trust-compliance
    # The articles this page demonstrates (tour.yaml's `pages`), by the path its route declares.
    context.setdefault("demonstrates", demonstrated(str(getattr(request.scope.get("route"), "path", ""))))
    response = templates.TemplateResponse(request, template, context, status_code=status)
    # Pages depend on who is asking: never cached, by the browser or anything in between.
    response.headers["Cache-Control"] = "no-store"
    notices.clear(request, response, secure=settings.cookie_secure)
    return response


@functools.cache
def demonstrated(route: str) -> tuple[Article, ...]:
    """The articles the page at `route` (as its route declares it) demonstrates; the tour never changes."""
    return tuple(load_tour().on_page(route))


def served_paths(request: Request) -> set[str]:
    """The paths this deployment serves (the attack lab runs only locally): a link elsewhere is not shown."""
    return {str(r.path) for r in iter_route_contexts(request.app.routes)}


# zt: user-authentication
# A sign-in with prompt=select_account (routes/auth.py): the identity provider lists the accounts signed in
# in this browser and "Use another account", instead of signing the last one in again without asking.
SWITCH_ACCOUNT = "/auth/switch-account"


def error_page(
    request: Request, status: int, title: str, detail: str, *, retry: str | None = None, switch: bool = False
) -> HTMLResponse:
    """The page says its request's correlation id (X-Correlation-Id, the trace id in every tier's log lines),
    so a person can quote what a header would hide from them. `switch`: a failed sign-in, which offers
    another account (SWITCH_ACCOUNT), since the provider would sign the same person in again."""
    reference = correlation_id(request)
    # The reference links to its trace when it is one of this session's own requests (web/traces.py).
    own = reference in getattr(request.state, "recent_traces", ())
    return page(
        request,
        "error.html",
        status,
        code=status,
        title=title,
        detail=detail,
        retry=retry,
        reference=reference,
        trace=reference if own else None,
        switch_account=SWITCH_ACCOUNT if switch else None,
    )
