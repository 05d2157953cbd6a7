"""The api: validates every token, authorizes per route, and calls downstream-api on the user's behalf."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from zerotrust.apponly import AppOnlyClient
from zerotrust.audit import audit_requests
from zerotrust.docs import serve_docs
from zerotrust.hops import hop_session
from zerotrust.identity import ConfidentialApps, client_credential
from zerotrust.onbehalf import OnBehalfOf
from zerotrust.service import build_validator, protect_api, provider_http_client

from .auth import token_policy
from .downstream import Downstream, DownstreamError
from .routes import admin, me, organization, reports, scim, tasks
from .settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Clients live as long as the process: keep-alive and TLS contexts are built once.
        async with provider_http_client() as provider_http, hop_session(settings.downstream_url) as session:
            app.state.validator = build_validator(token_policy(settings), settings.authority, provider_http)
            # The managed identity as a federated credential, or the certificate where none exists.
            credential = client_credential(
                managed_identity_client_id=settings.managed_identity_client_id,
                certificate_file=settings.client_certificate_file,
            )
            # One set of MSAL apps for both kinds of call: one credential, discovery fetched once.
            apps = ConfidentialApps(
                settings.client_id, settings.authority_host, credential, instance_discovery=settings.instance_discovery
            )
            obo = OnBehalfOf(apps)
            # zt: developer-strategy-application-permissions - for the app-only routes only.
            app_only = AppOnlyClient(apps)
            app.state.downstream = Downstream(session, obo, settings.downstream_app_id_uri, app_only)
            yield

    app = FastAPI(
        # Swagger UI is served from this host (zerotrust.docs): no CDN, no inline script.
        docs_url=None,
        redoc_url=None,
        title="api",
        summary="Tasks for the signed-in user; calls downstream-api on their behalf.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    protect_api(app, realm="api")

    @app.exception_handler(DownstreamError)
    async def downstream_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DownstreamError)
        headers = {"Cache-Control": "no-store"}
        if exc.status == 401:
            headers["WWW-Authenticate"] = (
                f'Bearer realm="api", error="invalid_token", error_description="{exc.description}"'
            )
        if exc.status == 503:
            headers["Retry-After"] = "5"
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    app.add_exception_handler(scim.ScimError, scim.scim_error_handler)

    serve_docs(app)
    audit_requests(app, "api", settings.audit_log)  # zt: overprivileged-permissions
    app.include_router(tasks.router)
    app.include_router(me.router)
    app.include_router(organization.router)
    app.include_router(admin.router)
    app.include_router(reports.router)
    app.include_router(scim.router)
    return app
