"""The web app: a backend-for-frontend. The browser gets pages and an opaque session cookie; tokens
stay on the server, in each user's encrypted MSAL cache, and go only to the api."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from zerotrust.headers import add_security_headers
from zerotrust.hops import hop_session

from .api_client import ApiError
from .auth import AccessTokens, Identity, IdentityProviderUnavailable, SignInFailed
from .consent import ConsentRequired
from .dependencies import Clients, CsrfRejected, SignInRequired
from .forms import TOO_LARGE, FormRefused, declared_too_large
from .pages import error_page
from .routes import admin, auth, chain, lab, organization, permissions, tasks, tour
from .routes import shared as shared_tasks
from .session import Sealer, Sessions, SqliteSessionStore
from .settings import Settings

log = logging.getLogger("web")

# The identity provider's answer is a cross-site form post by design; state protects it instead.
CALLBACK_PATH = "/auth/callback"


def create_app(settings: Settings | None = None, *, identity: Identity | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = SqliteSessionStore(settings.state_dir / "sessions.sqlite3")
        sealer = Sealer.from_key_file(settings.state_dir / "session-key")
        sessions = Sessions(
            store,
            sealer,
            idle_timeout=settings.session_idle_timeout,
            absolute_timeout=settings.session_absolute_timeout,
        )
        ident = identity or Identity(settings)
        try:
            async with hop_session(settings.api_url, timeout_seconds=settings.api_timeout_seconds) as api:
                app.state.clients = Clients(settings, api, sessions, ident, AccessTokens(ident, sessions))
                yield
        finally:
            store.close()

    app = FastAPI(
        title="web",
        summary="Zero Trust sample: the web app (backend-for-frontend).",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if declared_too_large(request):
                return error_page(request, TOO_LARGE.status, TOO_LARGE.title, TOO_LARGE.detail)
            if request.url.path != CALLBACK_PATH and _cross_site(request, settings):
                return error_page(
                    request,
                    403,
                    "Request refused",
                    "This form was sent from another site, so it was refused (CSRF protection).",
                )
        try:
            return await call_next(request)
        except Exception:
            # Never a stack trace to the browser; the log keeps it for the developer.
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return error_page(request, 500, "Something went wrong", "The web app hit an unexpected error.")

    # Added last, so it wraps everything above: every response gets the headers, errors included.
    add_security_headers(app, csp=settings.csp, hsts=settings.environment == "production")
    _exception_pages(app, settings)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for module in (tour, auth, tasks, chain, organization, admin, permissions):
        app.include_router(module.router)
    app.include_router(shared_tasks.router)
    # The attack lab exists only when turned on (locally, by zt run): otherwise /lab is a 404.
    app.state.attack_lab = settings.attack_lab
    if settings.attack_lab:
        app.state.lab_keys = lab.KeySet()
        app.include_router(lab.router)
    return app


def _cross_site(request: Request, settings: Settings) -> bool:
    # Defence in depth beside the CSRF token. Same-origin form posts carry `Origin: null` under
    # Referrer-Policy: no-referrer, so "null" is accepted; any other foreign origin, or a browser
    # saying the post is cross-site or same-site (a sibling host), is refused.
    origin = request.headers.get("origin")
    if origin is not None and origin not in ("null", settings.public_origin):
        return True
    return request.headers.get("sec-fetch-site") not in (None, "same-origin", "none")


def _exception_pages(app: FastAPI, settings: Settings) -> None:
    app.add_exception_handler(ConsentRequired, auth.ask_consent)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        status = 302 if request.method == "GET" else 303
        return RedirectResponse("/auth/login?" + urlencode({"next": exc.next_path}), status_code=status)

    @app.exception_handler(SignInFailed)
    async def sign_in_failed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInFailed)
        response = error_page(request, exc.status, exc.title, exc.detail, retry="/auth/login")
        auth.clear_cookie(response, settings, settings.sign_in_cookie)
        return response

    @app.exception_handler(IdentityProviderUnavailable)
    async def idp_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("identity provider unavailable (%s)", exc)
        return error_page(
            request,
            503,
            "Sign-in is unavailable",
            "The identity provider could not be reached. Try again in a moment.",
            retry="/auth/login",
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_page(
            request,
            exc.status,
            exc.title,
            exc.detail,
            retry=request.url.path if request.method == "GET" else None,
        )

    @app.exception_handler(FormRefused)
    async def form_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FormRefused)
        return error_page(request, exc.status, exc.title, exc.detail)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        return error_page(
            request,
            403,
            "Request refused",
            "This form is out of date or did not come from this app (CSRF protection). Reload the page and try again.",
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: Exception) -> Response:
        return error_page(request, 400, "Bad request", "That address or form is not valid here.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: "Page not found", 405: "Not allowed here"}
        return error_page(
            request,
            exc.status_code,
            titles.get(exc.status_code, "Request failed"),
            "There is nothing at this address for that kind of request.",
        )
