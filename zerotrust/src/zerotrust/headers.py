"""Security headers on every response, and no caching of anything that depends on the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

API_CSP = "default-src 'none'; frame-ancestors 'none'"


def add_security_headers(app: FastAPI, *, csp: str = API_CSP, hsts: bool = False) -> None:
    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        h = response.headers
        h.setdefault("Content-Security-Policy", csp)
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["X-Frame-Options"] = "DENY"
        h.setdefault("Cache-Control", "no-store")
        if hsts:
            h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response
