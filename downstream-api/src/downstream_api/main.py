"""downstream-api: the data tier. It trusts no network position, only tokens minted for it.

    web -> api -> downstream-api -> database

Every route but /healthz needs a valid access token whose audience is this API, obtained by the api
on behalf of a signed-in user (on-behalf-of flow), with the Records.* scope the route names.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from zerotrust.audit import audit_requests
from zerotrust.correlation import correlation_id
from zerotrust.service import build_validator, protect_api, provider_http_client

from .auth import token_policy
from .db import Database, make_engine, migrate
from .routes import me, records, reports, users
from .settings import Settings

log = logging.getLogger("downstream_api")

REALM = "downstream-api"
CORRELATION_HEADER = "X-Correlation-Id"
RETRY_AFTER_SECONDS = "5"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The clients this process holds for its lifetime: the identity provider's and the database's."""
    settings: Settings = app.state.settings
    # password_provider stays None until the PostgreSQL-with-managed-identity issue wires one in.
    engine = make_engine(settings.database_url, password_provider=None)
    try:
        # Off the event loop: opening a connection may fetch a token (PostgreSQL) or touch the disk.
        await anyio.to_thread.run_sync(migrate, engine)
        # Discovery and keys over one client: TLS context built once, honouring SSL_CERT_FILE (the
        # local dev CA), nothing taken from the environment; the keys are fetched on first need.
        async with provider_http_client() as provider_http:
            app.state.validator = build_validator(token_policy(settings), settings.authority, provider_http)
            app.state.database = Database(engine)
            yield
    finally:
        engine.dispose()


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    cid = correlation_id(request)
    log.error(
        "database unavailable on %s %s [correlation id %s]: %s",
        request.method,
        request.url.path,
        cid,
        type(exc).__name__,
    )
    body = {
        "error": "temporarily_unavailable",
        "error_description": "The database is unavailable; try again shortly.",
        "correlation_id": cid,
    }
    return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="downstream-api",
        summary="The data tier of the Zero Trust sample: records owned by tenant id + object id.",
        version="0.1.0",
        lifespan=lifespan,
        # No public schema or docs pages: every route but /healthz is for the api alone, and a
        # route that isn't guarded must not exist (the deny-by-default test enumerates them).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings

    # RFC 6750 errors with realm="downstream-api", 503 when the identity provider can't be reached
    # and no key is cached, /healthz, security headers: set up as in every API tier.
    protect_api(app, realm=REALM)  # zt: protect-api
    app.add_exception_handler(OperationalError, database_unavailable)

    audit_requests(app, REALM, settings.audit_log)  # zt: overprivileged-permissions
    app.include_router(me.router)
    app.include_router(records.router)
    app.include_router(reports.router)
    app.include_router(users.router)
    return app
