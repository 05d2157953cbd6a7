"""`zt bench`: what one hop costs the calling tier, for each HTTP client it could use, measured in one run.

The api calls downstream-api on every request, so the client that makes that hop is on the hot path.
This starts a small HTTPS server on loopback (in a process of its own, so its work is not counted),
sends the same requests through aiohttp (zerotrust.hops, what the tiers use) and through httpx, with
the same concurrency, and prints each client's CPU time per request and requests per second, and
their ratios. CPU time is this process's own (`time.process_time`): the client's cost, not the
server's. Absolute figures depend on the machine; the ratios are what to compare.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from devtools.ports import free_port
from devtools.processes import stop_process, wait_healthy
from devtools.tls import ensure_dev_tls

BODY = b'{"status": "ok"}'


async def _app(scope: dict[str, object], receive: Callable[[], Awaitable[object]], send: Callable[..., object]) -> None:
    # The smallest answer a tier gives: what is measured is the client, not the handler.
    if scope["type"] != "http":
        return
    await send(  # type: ignore[misc]
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": BODY})  # type: ignore[misc]


def serve(port: int, cert: str, key: str) -> None:
    import uvicorn

    uvicorn.run(_app, host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key, log_level="warning")


@dataclass(frozen=True)
class Measure:
    client: str
    requests: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / self.requests

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall_seconds


async def _drive(call: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> tuple[float, float]:
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def _measure(base: str, requests: int, concurrency: int) -> list[Measure]:
    from zerotrust.hops import hop_session, tls_context

    results = []
    async with hop_session(base, limit=concurrency) as session:

        async def aiohttp_call() -> None:
            async with session.get("/healthz") as r:
                assert r.status == 200 and await r.read() == BODY

        await _drive(aiohttp_call, concurrency * 4, concurrency)  # connections open, TLS done
        results.append(
            Measure("aiohttp (zerotrust.hops)", requests, *await _drive(aiohttp_call, requests, concurrency))
        )

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, verify=tls_context(), limits=limits, trust_env=False) as client:

        async def httpx_call() -> None:
            r = await client.get("/healthz")
            assert r.status_code == 200 and r.content == BODY

        await _drive(httpx_call, concurrency * 4, concurrency)
        results.append(Measure("httpx.AsyncClient", requests, *await _drive(httpx_call, requests, concurrency)))
    return results


def run(requests: int = 3000, concurrency: int = 32, out: Callable[[str], None] = print) -> list[Measure]:
    trusted = os.environ.get("SSL_CERT_FILE")
    with tempfile.TemporaryDirectory(prefix="zt-bench-") as folder:
        tls = ensure_dev_tls(Path(folder))
        os.environ["SSL_CERT_FILE"] = str(tls.ca_bundle)  # what the tiers' tls_context() trusts locally
        port = free_port()
        log = Path(folder) / "server.log"
        with log.open("wb") as sink:
            server = subprocess.Popen(  # noqa: S603 - argv is ours
                [
                    sys.executable,
                    "-m",
                    "devtools.bench",
                    "--serve",
                    str(port),
                    str(tls.server_cert),
                    str(tls.server_key),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"https://localhost:{port}"
            wait_healthy(server, f"{base}/healthz", tls.ca_bundle, log, "bench server")
            results = asyncio.run(_measure(base, requests, concurrency))
        finally:
            stop_process(server)
            # The bundle goes with the folder: leave the process trusting what it trusted before.
            if trusted is None:
                os.environ.pop("SSL_CERT_FILE", None)
            else:
                os.environ["SSL_CERT_FILE"] = trusted
    out(f"{requests} GET requests over HTTPS on loopback, {concurrency} at a time, one process per side")
    out(f"{'client':28} {'CPU ms/request':>15} {'requests/s':>11}")
    for m in results:
        out(f"{m.client:28} {m.cpu_ms_per_request:15.3f} {m.requests_per_second:11.0f}")
    fast, other = results
    out(
        f"ratio: httpx uses {other.cpu_seconds / fast.cpu_seconds:.1f}x the CPU of aiohttp per request; "
        f"aiohttp serves {fast.requests_per_second / other.requests_per_second:.1f}x the requests per second"
    )
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
