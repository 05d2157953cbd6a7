"""The api: validates every token, authorizes per route, and calls downstream-api on the user's behalf."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from zerotrust.apponly import AppOnlyClient
from zerotrust.cae import CAPABILITIES
from zerotrust.credentials import ConfidentialApps, client_credential
from zerotrust.graph import Graph, Send, send_json
from zerotrust.hops import hop_session
from zerotrust.keyset import Fetch, fetch_json
from zerotrust.limits import RateLimits
from zerotrust.onbehalf import OnBehalfOf
from zerotrust.protect import www_authenticate
from zerotrust.service import create_api, token_validator, tracing

from .dependencies import Clients
from .downstream import Downstream, DownstreamError
from .routes import admin, me, organization, reports, scim, tasks
from .scim import ScimError, scim_error_handler
from .settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    key_fetch: Fetch | None = None,
    credential: dict[str, Any] | None = None,
    msal_http: Any = None,
    graph: Send | None = None,
) -> FastAPI:
    """`key_fetch`, `credential`, `msal_http`, `graph`: how the key set is read, MSAL's client credential and
    HTTP client, and how Graph is asked, where not the configured ones (tests hand in fakes)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Clients live as long as the process: keep-alive and TLS contexts are built once.
        async with hop_session(None, timeout_seconds=5) as provider, hop_session(settings.downstream_url) as session:
            # The managed identity as a federated credential, or the certificate where none exists.
            configured = credential or client_credential(
                managed_identity_client_id=settings.managed_identity_client_id,
                certificate_file=settings.client_certificate_file,
            )
            # One set of MSAL apps for both kinds of call: one credential, discovery fetched once.
            apps = ConfidentialApps(
                settings.client_id,
                settings.authority_host,
                configured,
                instance_discovery=settings.instance_discovery,
                # zt: secure-with-cae
                # This tier handles claims challenges (Graph's, the token service's) and relays them.
                client_capabilities=CAPABILITIES,
                http_client=msal_http,
            )
            obo = OnBehalfOf(apps)
            # zt: developer-strategy-application-permissions
            # App-only calls downstream, for the app-only routes only, as the api's app-only registration.
            app_only = ConfidentialApps(
                settings.app_only_client_id,
                settings.authority_host,
                configured,
                instance_discovery=settings.instance_discovery,
                client_capabilities=CAPABILITIES,
                http_client=msal_http,
            )
            downstream = Downstream(
                session,
                obo,
                settings.downstream_app_id_uri,
                AppOnlyClient(app_only),
                Graph(settings.graph_url, obo, graph or send_json(provider)),
            )
            app.state.clients = Clients(
                token_validator(settings, key_fetch or fetch_json(provider)), downstream, settings.public_base_url
            )
            yield

    # Swagger UI is served from this host (zerotrust.docs): no CDN, no inline script.
    app = create_api(
        "api",
        "Tasks for the signed-in user; calls downstream-api on their behalf.",
        lifespan,
        allowed_hosts=settings.trusted_hosts,
        audit_log=settings.audit_log,
        limits=RateLimits.configured(settings),
        tracing=tracing("api", settings),
        routers=[module.router for module in (tasks, me, organization, admin, reports, scim)],
        docs=True,
    )
    app.add_exception_handler(DownstreamError, downstream_error)
    app.add_exception_handler(ScimError, scim_error_handler)
    return app


async def downstream_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DownstreamError)
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = www_authenticate("api", exc.error, exc.description, claims=exc.claims)
    if exc.status == 503:
        headers["Retry-After"] = "5"
    if exc.retry_after is not None:
        headers["Retry-After"] = exc.retry_after
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)
