"""Security headers on every response, no caching of anything that depends on the caller, and a cap
on what a request may carry in headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'"

# uvicorn limits only a request whose headers are still arriving; headers that arrive in one read are
# passed on whatever their size or number. Azure's front ends cap them too (Application Gateway at
# 32 KB). No legitimate caller comes near: the largest header here is a bearer token of a few KB.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
_TOO_LARGE = f"Request headers too large: at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES // 1024} KB in all.\n"


class RequestHeaderLimits:
    """431 (RFC 6585) for a request over the limits, before any of the app's own code sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if len(headers) > MAX_HEADERS or sum(len(k) + len(v) for k, v in headers) > MAX_HEADER_BYTES:
                body = _TOO_LARGE.encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 431,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def add_security_headers(app: FastAPI, *, csp: str = API_CSP, hsts: bool = False) -> None:
    # Added first, so the security headers below are set on its 431 as on every other answer.
    app.add_middleware(RequestHeaderLimits)

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
