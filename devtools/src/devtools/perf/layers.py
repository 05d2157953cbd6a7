"""What each layer of an API tier costs a request, in process (no network, no TLS): a bare FastAPI route, then
the same with the shared layers every tier has (trusted hosts, security headers, a server span whose trace id is
the correlation id), then with the bearer token checked (a validation cached, a scope checked), then with the
audit line written, then with the span written to a trace file as `make run` does, then with the rate limits (per
peer and per caller, zerotrust.limits). Microseconds per request."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from zerotrust.audit import audit_requests
from zerotrust.headers import SecurityHeaders
from zerotrust.hosts import TrustedHosts
from zerotrust.limits import PeerLimit, RateLimits
from zerotrust.protect import Protection
from zerotrust.tokens import Principal, TokenValidator
from zerotrust.tracing import TraceRequests, Tracing

CALLS = 3000


def _app(
    layers: bool, validator: TokenValidator | None, audit: Path | None, spans: Path | None = None, limits: bool = False
) -> Any:
    app = FastAPI()
    if validator is not None:

        async def get_validator(_request: Any) -> TokenValidator:
            return validator

        reader = Protection(get_validator, realm="bench").scopes("Tasks.Read", "Tasks.ReadWrite")

        # A default, not Annotated: postponed annotations can't resolve the local `reader`.
        @app.get("/tasks")
        async def protected(user: Principal = Depends(reader)) -> Any:
            return {"tid": user.tid}
    else:

        @app.get("/tasks")
        async def bare() -> Any:
            return {"tid": "bench"}

    if audit is not None:
        audit_requests(app, "bench", audit)
    if limits:
        # Never tripped here: the cost of counting is what is measured.
        app.add_middleware(
            PeerLimit, limits=RateLimits.of(peer_rate=1e9, peer_burst=1e9, caller_rate=1e9, caller_burst=1e9)
        )
    if layers:
        app.add_middleware(TrustedHosts, allowed=["localhost"])
        app.add_middleware(SecurityHeaders)
        app.add_middleware(TraceRequests, tracing=Tracing("bench", trace_file=spans))
    return app


async def _per_request_us(app: Any, token: str) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/tasks",
        "raw_path": b"/tasks",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 443),
        "state": {},
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def call() -> None:
        await app({**scope, "state": {}, "headers": list(scope["headers"])}, receive, send)

    await call()
    started = time.perf_counter()
    for _ in range(CALLS):
        await call()
    elapsed = time.perf_counter() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"the in-process app answered {sorted(set(statuses))}")
    return elapsed / CALLS * 1e6


async def layer_costs(validator: TokenValidator, token: str) -> dict[str, float]:
    """µs per request for each build of the same route, the validator's cache warm (as in steady state)."""
    await validator.validate(token)
    with tempfile.TemporaryDirectory(prefix="zt-layers-") as folder:
        audit = Path(folder) / "audit.jsonl"
        return {
            "bare_us": await _per_request_us(_app(False, None, None), token),
            "with_shared_layers_us": await _per_request_us(_app(True, None, None), token),
            "with_token_checked_us": await _per_request_us(_app(True, validator, None), token),
            "with_audit_line_us": await _per_request_us(_app(True, validator, audit), token),
            "with_span_written_us": await _per_request_us(_app(True, validator, audit, Path(folder) / "spans"), token),
            "with_rate_limits_us": await _per_request_us(
                _app(True, validator, audit, Path(folder) / "spans", limits=True), token
            ),
        }
