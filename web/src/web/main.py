"""The web app: a backend-for-frontend. The browser gets pages and an opaque session cookie; tokens stay on
the server, in each user's sealed MSAL cache, and go only to the api."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from azure.core.credentials_async import AsyncTokenCredential
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from zerotrust.audit import audit_requests, refuse
from zerotrust.bodies import declared_too_large
from zerotrust.hops import hop_session
from zerotrust.limits import RateLimits, text_refusal
from zerotrust.service import create_service, tracing

from . import cae, consent
from .api_client import ApiError, ClaimsChallenge
from .dependencies import Clients, CsrfRejected, SignInRequired, TooManyRequests, clients_of, page_of
from .forms import MAX_FORM_BYTES, FormRefused, too_large
from .pages import error_page
from .redis_store import open_store
from .routes import admin, auth, chain, favicon, guide, legal, organization, permissions, shared, tasks, tour, traces
from .session_store import Sealer
from .sessions import IdentityProviderUnavailable, Sessions
from .settings import Settings
from .signin import SignIn, SignInFailed
from .traces import RecentTraces

log = logging.getLogger("web")

# The identity provider's answer is a cross-site form post by design; state protects it instead.
CALLBACK_PATH = "/auth/callback"


def create_app(
    settings: Settings | None = None,
    *,
    credential: dict[str, Any] | None = None,
    msal_http: Any = None,
    store_credential: AsyncTokenCredential | None = None,
) -> FastAPI:
    """`credential` and `msal_http`: MSAL's client credential and HTTP client, where not the configured ones
    (tests hand in a fake identity provider); `store_credential`: the identity the Redis store logs in with,
    where not the web's managed identity."""
    settings = settings or Settings()
    limits = RateLimits.configured(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await open_store(settings, store_credential)
        sessions = Sessions(
            store,
            Sealer.from_key_file(settings.state_dir / "session-key"),
            idle_timeout=settings.session_idle_timeout,
            absolute_timeout=settings.session_absolute_timeout,
        )
        signin = SignIn(settings.sign_in(credential=credential, http_client=msal_http), sessions)
        # zt: identity-iam-development-best-practices
        # A person's own requests' traces, where this app can read the tiers' spans (the local stack).
        traces = RecentTraces(store, sessions.sealer) if settings.traces_folder is not None else None
        try:
            async with (
                hop_session(settings.api_url, timeout_seconds=settings.api_timeout_seconds) as api,
                hop_session(None, timeout_seconds=5) as graph,
            ):
                app.state.clients = Clients(settings, api, signin, graph, limits, traces)
                yield
        finally:
            await store.close()

    app = create_service(
        "web",
        "Zero Trust sample: the web app (backend-for-frontend).",
        lifespan,
        allowed_hosts=settings.trusted_hosts,
        csp=settings.csp,
        hsts=settings.environment == "production",
        middleware=[Middleware(Guard, public_origin=settings.public_origin)],
        limits=limits,
        refusal=text_refusal,
        tracing=tracing("web", settings),
        trust_caller_trace=False,
        routers=[
            module.router
            for module in (tasks, tour, guide, auth, chain, traces, organization, admin, permissions, shared, legal)
        ],
    )
    _error_pages(app)
    # zt: identity-iam-development-best-practices
    audit_requests(app, "web", settings.audit_log)
    # After the pages (FastAPI tries routes in order): what browsers ask once and cache.
    app.include_router(favicon.router)
    if settings.attack_lab:
        # Imported only here: the lab is the one part of the web that uses the developer tooling.
        from .routes import lab

        app.include_router(lab.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app


class Guard:
    """Before any route: a form post declaring more than the cap is refused unread (413), and one sent from
    another site (CSRF, defence in depth beside the synchronizer token) is refused (403). An unexpected
    error becomes a plain page, never a stack trace; the log keeps it for the developer."""

    def __init__(self, app: ASGIApp, public_origin: str) -> None:
        self.app, self.public_origin = app, public_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        refusal = None
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if declared_too_large(request, MAX_FORM_BYTES):
                refused = too_large()
                refusal = error_page(request, refused.status, refused.title, refused.detail)
            elif request.url.path != CALLBACK_PATH and self._cross_site(request):
                detail = "This form was sent from another site, so it was refused (CSRF protection)."
                refuse(scope.setdefault("state", {}), "cross_site_form")
                refusal = error_page(request, 403, "Request refused", detail)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            if started:
                raise
            failed = error_page(request, 500, "Something went wrong", "The web app hit an unexpected error.")
            await failed(scope, receive, send)

    def _cross_site(self, request: Request) -> bool:
        # Same-origin form posts carry `Origin: null` under Referrer-Policy: no-referrer, so "null" is
        # accepted; any other foreign origin, or a browser saying the post is cross-site or same-site
        # (a sibling host), is refused.
        origin = request.headers.get("origin")
        if origin is not None and origin not in ("null", self.public_origin):
            return True
        return request.headers.get("sec-fetch-site") not in (None, "same-origin", "none")


def _error_pages(app: FastAPI) -> None:
    async def ask_consent(request: Request, exc: Exception) -> Response:
        # zt: acquire-application-authorization-to-access-resources
        # A write that needs consent first: to the identity provider for the write scope alone.
        assert isinstance(exc, consent.ConsentRequired)
        c = clients_of(request)
        return await consent.ask_for(request, c, list(c.settings.api_write_scopes), "/tasks", exc.write)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        refuse(request.state, "no_session")
        status = 302 if request.method == "GET" else 303
        return RedirectResponse("/auth/login?" + urlencode({"next": exc.next_path}), status_code=status)

    async def sign_in_failed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInFailed)
        refuse(request.state, "sign_in_failed")
        response = error_page(request, exc.status_code, exc.title, exc.detail, retry="/auth/login", switch=True)
        c = clients_of(request)
        c.signin.clear_cookie(response, c.signin.config.sign_in_cookie)
        return response

    async def idp_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("identity provider unavailable (%s)", exc)
        detail = "The identity provider could not be reached. Try again in a moment."
        return error_page(request, 503, "Sign-in is unavailable", detail, retry="/auth/login")

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        retry = request.url.path if request.method == "GET" else None
        response = error_page(request, exc.status, exc.title, exc.detail, retry=retry)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = exc.retry_after
        return response

    async def form_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FormRefused)
        return error_page(request, exc.status, exc.title, exc.detail)

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        refuse(request.state, "csrf_token")
        detail = "This form is out of date or did not come from this app (CSRF protection). Reload and try again."
        return error_page(request, 403, "Request refused", detail)

    async def too_many_requests(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TooManyRequests)
        detail = f"You sent more requests than this app takes at once. Wait {exc.seconds} s and try again."
        response = error_page(request, 429, "Too many requests", detail, retry=page_of(request))
        response.headers["Retry-After"] = str(exc.seconds)
        return response

    async def invalid_request(request: Request, exc: Exception) -> Response:
        return error_page(request, 400, "Bad request", "That address or form is not valid here.")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Page not found", 405: "Not allowed here", 413: "Too much data"}
        detail = "There is nothing at this address for that kind of request."
        return error_page(request, exc.status_code, titles.get(exc.status_code, "Request failed"), detail)

    handlers = {
        # zt: secure-with-cae
        ClaimsChallenge: cae.sign_in_again,
        consent.ConsentRequired: ask_consent,
        SignInRequired: sign_in_required,
        SignInFailed: sign_in_failed,
        IdentityProviderUnavailable: idp_unavailable,
        ApiError: api_error,
        FormRefused: form_refused,
        CsrfRejected: csrf_rejected,
        TooManyRequests: too_many_requests,
        RequestValidationError: invalid_request,
        HTTPException: http_error,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
