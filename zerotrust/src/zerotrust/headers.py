"""Security headers on every response, no caching of anything that depends on the caller, and a cap on
what a request may carry in headers. Plain ASGI (a few microseconds a request), not a `call_next` layer."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")

# uvicorn does not cap what a request carries in headers (its h11 parser caps only headers still arriving;
# its httptools one, which the services use, not at all). Azure's front ends cap them too (Application Gateway at
# 32 KB). No legitimate caller comes near: the largest header here is a bearer token of a few KB.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
_TOO_LARGE = f"Request headers too large: at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES // 1024} KB in all.\n"


def over_header_limits(scope: Scope) -> bool:
    headers = scope["headers"]
    return len(headers) > MAX_HEADERS or sum(len(k) + len(v) for k, v in headers) > MAX_HEADER_BYTES


async def refuse_headers(send: Send) -> None:
    """431 (RFC 6585), and the connection closed: nothing of the request is read further."""
    body = _TOO_LARGE.encode()
    start = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": 431, "headers": start})
    await send({"type": "http.response.body", "body": body})


class HeaderLimits:
    """The header limits alone, for a server that sets its own headers (the identity emulator)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and over_header_limits(scope):
            await refuse_headers(send)
            return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """431 (RFC 6585) for a request over the header limits, before the app sees it; on every answer
    (errors included): a CSP unless the route set its own, nosniff, no referrer, no framing, no-store
    unless the route chose its caching, and HSTS where asked (production web, behind TLS ingress)."""

    def __init__(self, app: ASGIApp, csp: str = API_CSP, hsts: bool = False) -> None:
        self.app = app
        self.csp = csp.encode()
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if over_header_limits(scope):
            await refuse_headers(self._secured(send))
            return
        await self.app(scope, receive, self._secured(send))

    def _secured(self, send: Send) -> Send:
        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _ALWAYS_SET]
                names = {k.lower() for k, _ in kept}
                added = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if b"content-security-policy" not in names:
                    added.append((b"content-security-policy", self.csp))
                if b"cache-control" not in names:
                    added.append((b"cache-control", b"no-store"))
                if self.hsts:
                    added.append(HSTS)
                message = {**message, "headers": kept + added}
            await send(message)

        return secured


_ALWAYS_SET = {b"x-content-type-options", b"referrer-policy", b"x-frame-options", HSTS[0]}
