"""What every API tier of the chain sets up the same way: validation, error shapes, headers, health."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .correlation import HEADER, CorrelationId, correlation_id
from .errors import BearerError, bearer_error_handler, provider_unavailable_handler
from .headers import API_CSP, add_security_headers
from .hops import tls_context
from .openapi import document_permissions
from .validation import KeySet, ProviderUnavailable, TokenPolicy, TokenValidator

log = logging.getLogger("zerotrust.service")


def build_validator(policy: TokenPolicy, authority: str, http: httpx.AsyncClient) -> TokenValidator:
    return TokenValidator(policy, KeySet(authority=authority, http=http))


def provider_http_client() -> httpx.AsyncClient:
    """For discovery and keys only (rare calls): trusts SSL_CERT_FILE like every other hop."""
    return httpx.AsyncClient(timeout=5, trust_env=False, verify=tls_context())


async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
    """422 saying which field is wrong and why; the caller's values are not echoed back."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    return JSONResponse(
        {"error": "invalid_request", "error_description": "The request is not valid.", "detail": detail},
        status_code=422,
    )


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """500 without a trace: the log keeps it, the caller gets an id to quote."""
    cid = correlation_id(request)
    log.exception("unexpected error on %s %s [correlation id %s]", request.method, request.url.path, cid)
    # This handler runs outside the app's middleware, so it sets the headers they would have.
    headers = {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": API_CSP,
        HEADER: cid,
    }
    return JSONResponse(
        {"error": "server_error", "error_description": "Something went wrong on our side.", "correlation_id": cid},
        status_code=500,
        headers=headers,
    )


def protect_api(app: FastAPI, realm: str) -> None:  # zt: protect-api
    """RFC 6750 errors, a clean 503 when the provider is down, 422s that echo nothing, no stack
    traces, a correlation id on every request, security headers, and an OpenAPI schema that says
    what each route needs (token type, scopes or app roles)."""
    app.add_exception_handler(BearerError, bearer_error_handler(realm))
    app.add_exception_handler(ProviderUnavailable, provider_unavailable_handler)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(Exception, unexpected)

    @app.get("/healthz", tags=["ops"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    add_security_headers(app)
    app.add_middleware(CorrelationId)
    document_permissions(app)
