"""The naive build: the chain's checks done the way a first attempt does them, for `make bench`. Bench-only.

Per request: the key set fetched again, the token validated, an on-behalf-of exchange at the token endpoint
(no cache of its results), a new connection for the hop and a new database connection for the query.
What the real tiers keep, this throws away; what it checks, it checks.

    python -m devtools.perf.naive api|downstream PORT
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio.to_thread
import jwt
import msal
from devtools.perf.stack import Stack
from devtools.processes import stop_process, wait_healthy
from devtools.tls import DevTls, ca_env
from downstream_api.db import Record
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from zerotrust.credentials import federated_client_assertion
from zerotrust.hops import tls_context
from zerotrust.serve import serve

# Made once per process, as aiohttp's own default is: what the naive build throws away per request is
# connections, key sets and tokens, not the reading of the trusted CA certificates (~30 ms each time).
TLS = functools.cache(tls_context)


async def _claims(request: Request, authority: str, audience: str) -> dict[str, Any]:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=TLS())) as http:
        async with http.get(f"{authority}/v2.0/.well-known/openid-configuration") as found:
            jwks_uri = (await found.json())["jwks_uri"]
        async with http.get(jwks_uri) as found:
            keys = (await found.json())["keys"]
    try:
        kid = jwt.get_unverified_header(token)["kid"]
        jwk = next(k for k in keys if k["kid"] == kid)
        key = jwt.PyJWK({"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}, "RS256").key
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=["RS256"], audience=audience)
    except (jwt.PyJWTError, StopIteration, KeyError):
        raise HTTPException(401, "invalid token") from None
    return claims


def api(authority: str, audience: str, downstream: str, scope: str) -> FastAPI:
    app = FastAPI()
    # Built once, as even a first attempt does; MSAL's on-behalf-of goes to the token endpoint every call.
    client = msal.ConfidentialClientApplication(
        audience,
        authority=authority,
        client_credential={"client_assertion": federated_client_assertion()},
        instance_discovery=False,
    )

    @app.get("/tasks")
    async def tasks(request: Request) -> JSONResponse:
        await _claims(request, authority, audience)
        token = request.headers["authorization"].removeprefix("Bearer ")

        def exchange() -> dict[str, Any]:
            result: dict[str, Any] = client.acquire_token_on_behalf_of(token, [scope])
            return result

        result = await anyio.to_thread.run_sync(exchange)
        if "access_token" not in result:
            raise HTTPException(502, str(result.get("error")))
        headers = {"Authorization": f"Bearer {result['access_token']}"}
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=TLS())) as http,
            http.get(f"{downstream}/records", headers=headers) as answer,
        ):
            return JSONResponse(await answer.json(), status_code=answer.status)

    return app


def downstream(authority: str, audience: str, database: str) -> FastAPI:
    app = FastAPI()
    # No pool: every query opens its own database connection (and closes it).
    engine = create_engine(database, poolclass=NullPool)

    @app.get("/records")
    async def records(request: Request) -> JSONResponse:
        claims = await _claims(request, authority, audience)

        def query() -> list[dict[str, Any]]:
            with Session(engine) as session:
                rows = session.scalars(
                    select(Record).where(Record.tenant_id == claims["tid"], Record.owner_oid == claims["oid"])
                )
                return [{"id": r.id, "title": r.title, "done": r.done} for r in rows]

        return JSONResponse(await anyio.to_thread.run_sync(query))

    return app


@contextmanager
def naive_chain(stack: Stack, tls: DevTls, logs: Path, ports: tuple[int, int]) -> Iterator[str]:
    """The naive api and downstream-api against the real stack's identity provider and database."""
    api_port, down_port = ports
    headers = json.loads((stack.local / "emulator" / "managed-identity-headers.json").read_text())
    base = {
        **os.environ,
        **ca_env(tls),
        "FLOOR_TLS_CERT": str(tls.server_cert),
        "FLOOR_TLS_KEY": str(tls.server_key),
        "NAIVE_AUTHORITY": str(stack.info["authority"]),
        "IDENTITY_ENDPOINT": f"{stack.info['emulator']}/msi/token",
        "NAIVE_API": str(stack.info["api_scopes"][0]).rsplit("/", 1)[0].removeprefix("api://"),
        "NAIVE_DOWNSTREAM": str(stack.info["downstream_scopes"][0]).rsplit("/", 1)[0].removeprefix("api://"),
        "NAIVE_DATABASE": f"sqlite:///{stack.local / 'downstream' / 'records.db'}",
    }
    specs = [("downstream", down_port, "downstream-api"), ("api", api_port, "api")]
    processes = []
    try:
        for tier, port, identity in specs:
            env = {**base, "IDENTITY_HEADER": headers[identity], "NAIVE_NEXT": f"https://localhost:{down_port}"}
            log_path = logs / f"naive-{tier}.log"
            with log_path.open("wb") as log:
                command = [sys.executable, "-m", "devtools.perf.naive", tier, str(port)]
                process = subprocess_popen(command, env, log)
            processes.append(process)
            wait_healthy(process, f"https://localhost:{port}/docs", tls.ca_bundle, log_path, f"naive {tier}")
        yield f"https://localhost:{api_port}"
    finally:
        for process in reversed(processes):
            stop_process(process)


def subprocess_popen(command: list[str], env: dict[str, str], log: Any) -> Any:
    import subprocess

    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - argv is ours


def main(argv: list[str]) -> None:
    tier, port = argv[0], int(argv[1])
    authority = os.environ["NAIVE_AUTHORITY"]
    if tier == "api":
        scope = f"api://{os.environ['NAIVE_DOWNSTREAM']}/Records.Read"
        app = api(authority, os.environ["NAIVE_API"], os.environ["NAIVE_NEXT"], scope)
    else:
        app = downstream(authority, os.environ["NAIVE_DOWNSTREAM"], os.environ["NAIVE_DATABASE"])
    cert, key = Path(os.environ["FLOOR_TLS_CERT"]), Path(os.environ["FLOOR_TLS_KEY"])
    serve(app, f"naive-{tier}", "NAIVE", host="127.0.0.1", port=port, tls_cert=cert, tls_key=key, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
