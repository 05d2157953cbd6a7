"""downstream-api: the data tier. It trusts no network position, only tokens minted for it.

    web -> api -> downstream-api -> database

Every route but /healthz needs a valid access token whose audience is this API, obtained by the api
on behalf of a signed-in user (on-behalf-of flow), with the Records.* scope the route names.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from zerotrust.headers import API_CSP
from zerotrust.service import build_validator, protect_api, provider_http_client

from .auth import token_policy
from .db import Database, make_engine, migrate
from .routes import me, records
from .settings import Settings

log = logging.getLogger("downstream_api")

REALM = "downstream-api"
CORRELATION_HEADER = "X-Correlation-Id"
# A caller's id is kept (the api may pass its own, so one id follows a request down the chain) only
# if it is short and plain; anything else is replaced, so logs can't be fed arbitrary text.
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
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


class CorrelationId:
    """Gives every request an id, echoed in X-Correlation-Id and in the logs of anything that fails."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-correlation-id"), "")
        correlation_id = incoming if _CORRELATION_ID.match(incoming) else str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-correlation-id"]
                headers.append((b"x-correlation-id", correlation_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def correlation_id(request: Request) -> str:
    return str(getattr(request.state, "correlation_id", "") or uuid.uuid4())


async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
    """422 saying which field is wrong and why; the caller's values are not echoed back."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    return JSONResponse({"error": "invalid_request", "error_description": "The request is not valid.",
                         "detail": detail}, status_code=422)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    cid = correlation_id(request)
    log.error("database unavailable on %s %s [correlation id %s]: %s", request.method, request.url.path, cid,
              type(exc).__name__)
    body = {"error": "temporarily_unavailable", "error_description": "The database is unavailable; try again "
            "shortly.", "correlation_id": cid}
    return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS})


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """500 without a trace: the log keeps it, the caller gets an id to quote."""
    cid = correlation_id(request)
    log.exception("unexpected error on %s %s [correlation id %s]", request.method, request.url.path, cid)
    # This handler runs outside the app's middleware, so it sets the headers they would have.
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": API_CSP, CORRELATION_HEADER: cid}
    return JSONResponse({"error": "server_error", "error_description": "Something went wrong on our side.",
                         "correlation_id": cid}, status_code=500, headers=headers)


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
    app.add_middleware(CorrelationId)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(OperationalError, database_unavailable)
    # Replaces protect_api's catch-all with one that also gives the caller a correlation id.
    app.add_exception_handler(Exception, unexpected)

    app.include_router(me.router)
    app.include_router(records.router)
    return app
