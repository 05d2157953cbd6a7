"""The identity emulator's app factory and its two listeners (https back channel, http front channel)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope
from zerotrust.headers import HeaderLimits
from zerotrust.hosts import LOOPBACK_NAMES, TrustedHosts
from zerotrust.limits import PeerLimit
from zerotrust.settings import is_loopback_host

from . import (
    accounts,
    admin,
    admin_apps,
    admin_auth,
    adminconsent,
    discovery,
    grants,
    graph,
    graph_audit,
    home,
    managed_identity,
    pages,
)
from .admin_auth import AdminRefused
from .core import Emulator
from .errors import EntraError
from .forms import MAX_FORM_BYTES
from .lockout import limited
from .settings import EmulatorSettings

log = logging.getLogger("identity_emulator")


def create_app(settings: EmulatorSettings | None = None) -> FastAPI:
    settings = settings or EmulatorSettings()
    emu = Emulator(settings)
    app = FastAPI(
        title="identity-emulator",
        summary="A local stand-in for Microsoft Entra ID (v2.0 endpoints). Development and tests only.",
        version="0.1.0",
    )
    app.state.emulator = emu

    own_origins = {settings.front_base, settings.issuer_base}
    # Where our forms may lead (the login POST redirects to the app): registered origins, with any
    # port for http loopback ones, matching how redirect URIs themselves are compared.
    redirect_origins = sorted(
        {
            f"{p.scheme}://{p.hostname}:*"
            if p.scheme == "http" and p.hostname in ("localhost", "127.0.0.1")
            else f"{p.scheme}://{p.netloc}"
            for a in emu.directory.applications.values()
            for p in map(urlsplit, a.redirect_uris + a.post_logout_redirect_uris)
        }
    )
    csp = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"frame-ancestors 'none'; form-action 'self' {' '.join(redirect_origins)}"
    )

    # Throttling per address on the token and sign-in endpoints (lockout.py), inside the guard below so its
    # answers carry the same headers; plain ASGI, before any form is read.
    app.add_middleware(PeerLimit, limits=emu.throttles, refusal=_throttled, limited=limited)
    # Any Host but this machine's names on the emulator's two ports is a 400 (zerotrust.hosts, as at every
    # tier): a DNS-rebinding page could otherwise drive the admin view. Also inside the guard, which checks
    # the peer first and puts its headers on this answer too.
    names = dict.fromkeys((*LOOPBACK_NAMES, settings.public_host.lower()))
    app.add_middleware(
        TrustedHosts, allowed=[f"{name}:{port}" for name in names for port in (settings.port, settings.front_port)]
    )

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Defence in depth beside the loopback bind: refuse any peer that isn't this machine.
        peer = request.client.host if request.client else ""
        if not is_loopback_host(peer):
            return JSONResponse({"error": "access_denied", "error_description": "loopback only"}, status_code=403)
        if request.method == "POST":
            origin = request.headers.get("origin")
            # A cross-site form post (CSRF against the admin view or the consent page) is refused.
            if origin is not None and origin not in own_origins:
                return JSONResponse(
                    {"error": "access_denied", "error_description": "cross-origin POST refused"}, status_code=403
                )
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
                return EntraError("invalid_request", 9002313, status=413).response()
        response = await call_next(request)
        use = getattr(request.state, graph_audit.STATE_KEY, None)
        if use is not None and emu.audit is not None:
            emu.audit.write(graph_audit.line(use, request.method, response.status_code))
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Not no-referrer: under it browsers send `Origin: null` even on our own pages' form posts, which
        # the check above refuses. same-origin still keeps URLs (state, nonce) from every other site.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    @app.exception_handler(EntraError)
    async def entra_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EntraError)
        return exc.response()

    @app.exception_handler(AdminRefused)
    async def admin_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AdminRefused)
        return exc.response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Never a stack trace to the caller; the log keeps it for the developer.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": "server_error", "error_description": "AADSTS90100: internal error"}, status_code=500
        )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(discovery.router)
    app.include_router(grants.router)
    app.include_router(managed_identity.router)
    app.include_router(graph.router)
    app.include_router(accounts.router)
    app.include_router(admin_auth.router)
    app.include_router(admin.router)
    app.include_router(admin_apps.router)
    app.include_router(adminconsent.router)
    app.include_router(pages.router)
    app.include_router(home.router)
    # uvicorn caps headers only while they are still arriving; any that arrive in one read would pass, at any
    # size. Outermost: refused before the guard or any route reads them, as at every tier (zerotrust.headers).
    app.add_middleware(HeaderLimits)
    return app


def _throttled(seconds: int, scope: Scope) -> tuple[bytes, bytes]:
    """Entra's error shape for a program (the token endpoint), a sentence for a person's browser."""
    err = EntraError("temporarily_unavailable", 90055, status=429, seconds=seconds)
    if scope["path"].endswith(("/token", "/devicecode")):
        return b"application/json", json.dumps(err.body()).encode()
    return b"text/plain; charset=utf-8", f"{err.description}\n".encode()


class _Server(uvicorn.Server):
    """Two servers share one loop; signals are handled once, below, for both."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: EmulatorSettings) -> None:
    if settings.tls_cert is None or settings.tls_key is None:
        raise SystemExit(
            "EMULATOR_TLS_CERT and EMULATOR_TLS_KEY are required: MSAL talks to an authority "
            "over https only. `make run` generates a local dev CA and certificate for you."
        )
    app = create_app(settings)

    def config(port: int, certfile: str | None = None, keyfile: str | None = None) -> uvicorn.Config:
        # Idle keep-alive connections from clients must not hold a shutdown (Ctrl-C) for long.
        return uvicorn.Config(
            app,
            host=settings.host,
            port=port,
            log_level="warning",
            server_header=False,
            proxy_headers=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            # Longer than MSAL's and azure-identity's pooled connections sit idle between token requests
            # in a busy run, so a client never reuses a connection this server is closing that moment.
            timeout_keep_alive=75,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )

    servers = [
        _Server(config(settings.port, str(settings.tls_cert), str(settings.tls_key))),
        _Server(config(settings.front_port)),
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    print(
        f"identity emulator (dev/test only): back channel {settings.issuer_base}, "
        f"front channel {settings.front_base}, admin view {settings.front_base}/admin "
        "(sign in as a demo administrator)",
        flush=True,
    )
    await asyncio.gather(*(s.serve() for s in servers))
