"""What every API tier of the chain sets up the same way: validation, error shapes, headers, health."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .errors import BearerError, bearer_error_handler, provider_unavailable_handler
from .headers import add_security_headers
from .hops import tls_context
from .validation import KeySet, ProviderUnavailable, TokenPolicy, TokenValidator

log = logging.getLogger("zerotrust.service")


def build_validator(policy: TokenPolicy, authority: str, http: httpx.AsyncClient) -> TokenValidator:
    return TokenValidator(policy, KeySet(authority=authority, http=http))


def provider_http_client() -> httpx.AsyncClient:
    """For discovery and keys only (rare calls): trusts SSL_CERT_FILE like every other hop."""
    return httpx.AsyncClient(timeout=5, trust_env=False, verify=tls_context())


def protect_api(app: FastAPI, realm: str) -> None:  # zt: protect-api
    """RFC 6750 errors, a clean 503 when the provider is down, no stack traces, security headers."""
    app.add_exception_handler(BearerError, bearer_error_handler(realm))
    app.add_exception_handler(ProviderUnavailable, provider_unavailable_handler)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "server_error", "error_description": "Something went wrong on our side."},
                            status_code=500)

    @app.get("/healthz", tags=["ops"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    add_security_headers(app)
