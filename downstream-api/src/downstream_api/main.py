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
from zerotrust.cae import CAPABILITIES
from zerotrust.correlation import correlation_id
from zerotrust.credentials import ConfidentialApps, client_credential
from zerotrust.graph import Graph, Send, send_json
from zerotrust.groups import GroupResolver
from zerotrust.hops import hop_session
from zerotrust.keyset import Fetch, fetch_json
from zerotrust.limits import RateLimits
from zerotrust.names import UserNames
from zerotrust.onbehalf import OnBehalfOf
from zerotrust.service import create_api, token_validator, tracing

from .db import Database, connecting_identity, engine_for, migrate
from .dependencies import Clients
from .routes import me, organization, records, reports, users
from .settings import Settings

log = logging.getLogger("downstream_api")

RETRY_AFTER_SECONDS = "5"


def create_app(
    settings: Settings | None = None, *, key_fetch: Fetch | None = None, graph: Send | None = None
) -> FastAPI:
    """`key_fetch` and `graph`: how the key set is read and Graph is asked (tests hand in fakes)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_for(settings)
        try:
            if settings.migrate_on_start:
                # Off the event loop: opening a connection may fetch a token (PostgreSQL) or touch the disk.
                await anyio.to_thread.run_sync(migrate, engine)
            # The identity provider and Graph over one client: TLS context built once, nothing taken
            # from the environment; the keys are fetched on first need.
            async with hop_session(None, timeout_seconds=5) as provider:
                # On group overage only: Graph, on the user's behalf, as this API (its managed identity as a
                # federated credential, or the certificate where none exists: the same choice as every tier).
                credential = client_credential(
                    managed_identity_client_id=settings.managed_identity_client_id,
                    certificate_file=settings.client_certificate_file,
                )
                obo = OnBehalfOf(
                    ConfidentialApps(
                        settings.client_id,
                        settings.authority_host,
                        credential,
                        instance_discovery=settings.instance_discovery,
                        # zt: secure-with-cae
                        # This tier handles Graph's claims challenges (relayed to a cp1 caller).
                        client_capabilities=CAPABILITIES,
                    )
                )
                on_behalf = Graph(settings.graph_url, obo, graph or send_json(provider))
                app.state.clients = Clients(
                    token_validator(settings, key_fetch or fetch_json(provider)),
                    Database(engine, connecting_identity(settings)),
                    GroupResolver(on_behalf),
                    obo,
                    UserNames(on_behalf),
                )
                yield
        finally:
            engine.dispose()

    # No public schema or docs pages: every route but /healthz is for the api alone.
    app = create_api(
        "downstream-api",
        "The data tier of the Zero Trust sample: records owned by tenant id + object id.",
        lifespan,
        allowed_hosts=settings.trusted_hosts,
        audit_log=settings.audit_log,
        limits=RateLimits.configured(settings),
        tracing=tracing("downstream-api", settings),
        routers=[module.router for module in (records, me, organization, reports, users)],
    )
    # The database refused or did not answer (OperationalError, InterfaceError), or this service's
    # managed identity could not get its database token (AzurePgEntraError): a 503 the caller may
    # retry, and the pool reconnects by itself once both are back.
    for unavailable in (OperationalError, InterfaceError, AzurePgEntraError):
        app.add_exception_handler(unavailable, database_unavailable)
    return app


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    cid = correlation_id(request)
    # The exception's type only: a driver's message can quote connection details.
    name = type(exc).__name__
    log.error("database unavailable on %s %s [correlation id %s]: %s", request.method, request.url.path, cid, name)
    body = {
        "error": "temporarily_unavailable",
        "error_description": "The database is unavailable; try again shortly.",
        "correlation_id": cid,
    }
    return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS})
