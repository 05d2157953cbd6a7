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
from azure_postgresql_auth.errors import AzurePgEntraError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from zerotrust.audit import audit_requests
from zerotrust.correlation import correlation_id
from zerotrust.groups import GroupResolver
from zerotrust.identity import ConfidentialApps, federated_client_assertion
from zerotrust.onbehalf import OnBehalfOf
from zerotrust.service import build_validator, protect_api, provider_http_client

from .auth import token_policy
from .db import Database, engine_for, migrate
from .groups import Groups
from .routes import me, organization, records, reports, users
from .settings import Settings

log = logging.getLogger("downstream_api")

REALM = "downstream-api"
CORRELATION_HEADER = "X-Correlation-Id"
RETRY_AFTER_SECONDS = "5"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The clients this process holds for its lifetime: the identity provider's and the database's."""
    settings: Settings = app.state.settings
    engine = engine_for(settings)
    try:
        if settings.migrate_on_start:
            # Off the event loop: opening a connection may fetch a token (PostgreSQL) or touch the disk.
            await anyio.to_thread.run_sync(migrate, engine)
        # Discovery and keys over one client: TLS context built once, honouring SSL_CERT_FILE (the
        # local dev CA), nothing taken from the environment; the keys are fetched on first need.
        async with provider_http_client() as provider_http:
            app.state.validator = build_validator(token_policy(settings), settings.authority, provider_http)
            app.state.database = Database(engine)
            # On group overage only: Graph, on the user's behalf, as this API (its managed identity).
            obo = OnBehalfOf(
                ConfidentialApps(
                    settings.client_id,
                    settings.authority_host,
                    federated_client_assertion(settings.managed_identity_client_id or None),
                    instance_discovery=settings.instance_discovery,
                )
            )
            app.state.groups = Groups(GroupResolver(settings.graph_url, obo, provider_http))
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
    # The database refused or did not answer (OperationalError, InterfaceError), or this service's
    # managed identity could not get its database token (AzurePgEntraError): a 503 the caller may
    # retry, and the pool reconnects by itself once both are back.
    for unavailable in (OperationalError, InterfaceError, AzurePgEntraError):
        app.add_exception_handler(unavailable, database_unavailable)

    audit_requests(app, REALM, settings.audit_log)  # zt: overprivileged-permissions
    app.include_router(me.router)
    app.include_router(records.router)
    app.include_router(organization.router)
    app.include_router(reports.router)
    app.include_router(users.router)
    return app
