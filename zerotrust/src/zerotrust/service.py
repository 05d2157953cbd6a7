"""The skeleton every tier is built on, written once: the app, /healthz, security headers, correlation ids,
rate limits; and for the APIs, RFC 6750 errors, 422s that echo nothing, no stack trace, permissions in the
schema, audit."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware import Middleware

from . import protect
from .audit import audit_requests
from .correlation import HEADER, correlation_id
from .docs import serve_docs
from .headers import API_CSP, SecurityHeaders
from .hosts import TrustedHosts
from .keyset import Fetch, KeySet
from .limits import PeerLimit, RateLimits, Refusal, json_refusal
from .openapi import document_permissions
from .settings import ApiSettings, ServiceSettings
from .tokens import TokenPolicy, TokenValidator
from .tracing import TraceRequests, Tracing

log = logging.getLogger(__name__)

VERSION = "0.1.0"
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
C = TypeVar("C")


def lifespan_clients(kind: type[C]) -> Callable[[Request], Awaitable[C]]:
    """The dependency giving what the app's lifespan built (its one `kind` object, kept as app.state.clients):
    a service's dependencies.py makes it once, and routes reach the clients through it alone."""

    async def clients(request: Request) -> C:
        found = request.app.state.clients
        if not isinstance(found, kind):
            raise TypeError(f"app.state.clients is not a {kind.__name__}: is the app's lifespan running?")
        return found

    return clients


def create_service(
    name: str,
    summary: str,
    lifespan: Lifespan,
    *,
    allowed_hosts: Sequence[str],
    routers: Sequence[APIRouter] = (),
    docs: bool = False,
    csp: str = API_CSP,
    hsts: bool = False,
    middleware: Sequence[Middleware] = (),
    limits: RateLimits | None = None,
    refusal: Refusal = json_refusal,
    tracing: Tracing | None = None,
    trust_caller_trace: bool = True,
) -> FastAPI:
    """`allowed_hosts`: the Host header values answered (settings.trusted_hosts), any other a 400.
    `routers`: the service's routes, most asked first: FastAPI tries routes in order (~19k instructions for each
    one that does not match), so they come before /healthz and the docs, which are asked far less.
    `docs`: /openapi.json and /docs (Swagger UI from this host, zerotrust.docs); off for internal tiers.
    `middleware`: the service's own, inside the shared ones, so its answers get the security headers too.
    `limits`: per-peer rate limit before the service's own middleware (answered with `refusal`), per-caller
    where the caller becomes known (zerotrust.limits).
    `tracing`: where spans go (None: trace ids for correlation, nothing exported); `trust_caller_trace`:
    continue a caller's W3C trace (inner tiers) rather than start one (the web app, facing browsers)."""
    app = FastAPI(
        title=name,
        summary=summary,
        version=VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # zerotrust.docs serves /openapi.json where `docs`, after the service's own routes
        # The spans are zerotrust.tracing's (their trace id is the correlation id); FastAPI's own telemetry
        # would only ask OpenTelemetry's global providers, on every request, whether to make more.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    for router in routers:
        app.include_router(router)

    @app.get("/healthz", tags=["ops"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if docs:
        serve_docs(app)
    for own in middleware:
        app.add_middleware(own.cls, *own.args, **own.kwargs)
    if limits is not None:
        app.add_middleware(PeerLimit, limits=limits, refusal=refusal)
    # Outside the limits, inside the headers and the trace (its 400 gets both): a misdirected request is
    # answered before anything else of the service runs.
    app.add_middleware(TrustedHosts, allowed=allowed_hosts)
    app.add_middleware(SecurityHeaders, csp=csp, hsts=hsts)
    app.add_middleware(TraceRequests, tracing=tracing or Tracing(name), trust_caller=trust_caller_trace)
    return app


async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
    """422 saying which field is wrong and why; the caller's values are not echoed back."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    body = {"error": "invalid_request", "error_description": "The request is not valid.", "detail": detail}
    return JSONResponse(body, status_code=422)


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """500 without a trace: the log keeps it, the caller gets an id to quote."""
    cid = correlation_id(request)
    log.exception("unexpected error on %s %s [correlation id %s]", request.method, request.url.path, cid)
    # This handler runs outside the app's middleware, so it sets the headers they would have.
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": API_CSP}
    body = {"error": "server_error", "error_description": "Something went wrong on our side.", "correlation_id": cid}
    return JSONResponse(body, status_code=500, headers={**headers, HEADER: cid})


# zt: protect-api
def create_api(
    name: str,
    summary: str,
    lifespan: Lifespan,
    *,
    allowed_hosts: Sequence[str],
    audit_log: Path | None,
    routers: Sequence[APIRouter] = (),
    docs: bool = False,
    limits: RateLimits | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """An API tier: every refusal an RFC 6750 answer, and what each route needs written into its schema."""
    app = create_service(
        name,
        summary,
        lifespan,
        allowed_hosts=allowed_hosts,
        routers=routers,
        docs=docs,
        limits=limits,
        tracing=tracing,
    )
    protect.install(app)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(Exception, unexpected)
    document_permissions(app)
    # zt: overprivileged-permissions
    audit_requests(app, name, audit_log)
    return app


# zt: protect-api
def token_validator(settings: ApiSettings, fetch: Fetch) -> TokenValidator:
    """Tokens for this API, from its allowed tenants and calling apps, signed by the provider's keys."""
    policy = TokenPolicy.for_authority(
        settings.authority_host,
        settings.client_id,
        settings.tenants,
        settings.allowed_client_ids,
        settings.app_only_client_ids,
        settings.clock_leeway_seconds,
    )
    keys = KeySet(
        settings.authority,
        fetch,
        refresh_interval=settings.key_set_refresh_seconds,
        max_age=settings.key_set_max_age_seconds,
    )
    return TokenValidator(policy, keys)


def tracing(name: str, settings: ServiceSettings) -> Tracing:
    """Where `name`'s spans go, from its settings (a file locally, Azure Monitor when configured)."""
    return Tracing(
        name,
        trace_file=settings.trace_file,
        azure_monitor=settings.applicationinsights_connection_string,
        managed_identity_client_id=settings.managed_identity_client_id,
        per_second=settings.trace_samples_per_second,
    )
