"""`python -m <service>`: settings errors a person can act on, then uvicorn on loopback.

Every tier starts the same way, so a configuration mistake reads the same everywhere: the variable
at fault and why, exit code 2, no traceback.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from .redact import install_log_redaction

S = TypeVar("S")

# A server must keep an idle connection open longer than any client keeps it for reuse. With equal
# timeouts (uvicorn's and httpx's are both 5 s) a client can send a request on a connection the server
# is closing that very moment and get "server disconnected without a response": seen here under load
# from a 50-thread test client. Our own hop (zerotrust.hops) keeps idle connections 30 s; browsers
# retry an idempotent request on a closed keep-alive connection by themselves.
SERVER_KEEP_ALIVE_SECONDS = 75

# Python's default, 700, collects the youngest objects many times a second under load: each of sixteen requests in
# flight holds hundreds, which then survive into the oldest generation and bring on full collections.
YOUNG_COLLECTION_THRESHOLD = 10_000


def load_settings(make: Callable[[], S], service: str, prefix: str) -> S:
    try:
        return make()
    except ValidationError as exc:
        for err in exc.errors():
            where = "_".join(map(str, err["loc"])).upper()
            print(
                f"{service}: {prefix}_{where}: {err['msg']}" if where else f"{service}: {err['msg']}", file=sys.stderr
            )
        sys.exit(2)


def run(service: str, settings_class: Callable[[], Any], create_app: Callable[[Any], FastAPI]) -> None:
    """`python -m <service>`: the settings (or a clear error), then the app over HTTPS (plain http for the
    web on localhost, where TLS ends at the ingress in Azure)."""
    prefix = str(getattr(settings_class, "model_config", {}).get("env_prefix", "")).rstrip("_")
    settings = load_settings(settings_class, service, prefix)
    serve(
        create_app(settings),
        service,
        prefix,
        host=settings.host,
        port=settings.port,
        tls_cert=settings.tls_cert,
        tls_key=settings.tls_key,
        require_tls=settings.require_tls,
        log_level=settings.log_level,
    )


def serve(
    app: FastAPI,
    service: str,
    prefix: str,
    *,
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    require_tls: bool = True,
    log_level: str = "info",
) -> None:
    if require_tls:
        if tls_cert is None or tls_key is None:
            # Bearer tokens travel in this service's requests: never over plain http, not on a laptop either.
            sys.exit(
                f"{service}: {prefix}_TLS_CERT and {prefix}_TLS_KEY are required (HTTPS only). "
                "`make run` generates a local dev CA and certificate."
            )
        for path in (tls_cert, tls_key):
            if not path.is_file():
                sys.exit(f"{service}: {path} does not exist or is not a file")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    install_log_redaction()
    # azure-identity logs every managed-identity request at INFO; only its warnings are worth a line.
    logging.getLogger("azure").setLevel(logging.WARNING)
    scheme = "https" if require_tls else "http"
    print(f"{service}: {scheme}://localhost:{port}/", flush=True)
    uvicorn.run(
        settled(app),
        host=host,
        port=port,
        ssl_certfile=str(tls_cert) if require_tls else None,
        ssl_keyfile=str(tls_key) if require_tls else None,
        log_level="warning",
        # uvicorn's C parser (llhttp): h11, its pure-Python default, cost each tier a quarter to a third of its
        # CPU per request, more where more headers travel (a bearer token, the security headers).
        http="httptools",
        server_header=False,
        # Behind no proxy locally; in Azure the platform's ingress is the only way in.
        proxy_headers=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
    )


def settled(app: FastAPI) -> FastAPI:
    """`app`, whose garbage collector, once the lifespan has started it, leaves alone what lives as long as the
    process: without it, under load, a full collection walked every module, class and client (over 100,000
    objects, 60-80 ms with the event loop stopped) a few times a minute, and the youngest were collected every
    few milliseconds: 6-12% of each tier's CPU."""
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with started(a) as state:
            gc.collect()
            gc.freeze()
            gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
            yield state

    app.router.lifespan_context = lifespan
    return app
