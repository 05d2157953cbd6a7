"""What downstream-api's request costs above the floor's, in instructions: a figure this machine's speed does not move.

Three apps run in this one process (no network, no TLS), each answering the same `GET /records` called straight
through ASGI (an HTTP client in process would count as much again as the floor's own work, the same for each): the
real app with its key set, audit line and every check, the token's validation cached as in steady state; the
floor's (perf/floor.py); and the floor's given the real route's shape (its dependencies, paging, Link header and
response model, none of its checks), which tells FastAPI's share of the difference from the checks'. Each phase
starts with `os.getppid()`, where valgrind's callgrind, told `--dump-before=getppid`, writes what it counted so
far. `--without` switches one of the real app's layers off, to see what it costs (bench-only monkeypatching;
nothing in the service can be switched off).

    python -m devtools.perf.instructions [--requests N] [--without audit,span,headers,hosts,deactivation]
    python -m devtools.perf.instructions --count    # under valgrind: millions of instructions per request
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

HOST = "https://login.bench.test"
LAYERS = ("audit", "span", "headers", "hosts", "deactivation")
VALGRIND = "valgrind --tool=callgrind --cache-sim=no --branch-sim=no --dump-before=getppid"


class Passthrough:
    def __init__(self, app: Any, **_: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class CorrelationOnly(Passthrough):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("state", {})["correlation_id"] = "0" * 32
        await self.app(scope, receive, send)


def _without(layers: set[str]) -> None:
    import downstream_api.dependencies as dependencies
    import zerotrust.service as service

    stand_ins: dict[str, dict[str, type]] = {
        "span": {"TraceRequests": CorrelationOnly},
        "headers": {"SecurityHeaders": Passthrough},
        "hosts": {"TrustedHosts": Passthrough, "PeerLimit": Passthrough},
    }
    for layer in layers & stand_ins.keys():
        for name, stand_in in stand_ins[layer].items():
            setattr(service, name, stand_in)  # what create_service adds, as it looks the name up
    if "deactivation" in layers:
        dependencies._deactivated = lambda *_: False


async def _phases(requests: int, without: set[str], say: Any) -> None:
    from devtools.perf import floor
    from downstream_api.main import create_app
    from downstream_api.settings import API_APP_ID, DOWNSTREAM_API_APP_ID, Settings
    from zerotrust.settings import HOME_TENANT_ID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "bench", "use": "sig"}
    authority = f"{HOST}/{HOME_TENANT_ID}"

    async def fetch(url: str) -> Any:
        if url.endswith("/.well-known/openid-configuration"):
            return {"issuer": f"{authority}/v2.0", "jwks_uri": f"{authority}/discovery/v2.0/keys"}
        return {"keys": [jwk]}

    now = int(time.time())
    claims = {
        "aud": DOWNSTREAM_API_APP_ID, "iss": f"{authority}/v2.0", "iat": now, "nbf": now, "exp": now + 3600,
        "tid": HOME_TENANT_ID, "oid": str(uuid.uuid4()), "sub": "bench", "azp": API_APP_ID, "azpacr": "2",
        "ver": "2.0", "scp": "Records.ReadWrite", "idtyp": "user", "uti": uuid.uuid4().hex,
    }  # fmt: skip
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
    _without(without)
    folder = Path(tempfile.mkdtemp(prefix="zt-instructions-"))
    try:
        # As `make run` has it: an audit file; spans made but not kept (a kept one costs its own, see assume-breach).
        settings = Settings(
            authority=authority,
            state_dir=folder / "downstream",
            database_url=f"sqlite:///{folder / 'records.db'}",
            database_token_auth=False,
            audit_log=None if "audit" in without else folder / "audit.jsonl",
        )
        real, bare = create_app(settings, key_fetch=fetch), floor.downstream(f"sqlite:///{folder / 'floor.db'}", 5)
        shaped = floor.downstream(f"sqlite:///{folder / 'shaped.db'}", 5, shaped=True)
        bearer = {"Host": urlsplit(settings.public_base_url).netloc, "Authorization": f"Bearer {token}"}
        anyone = {"Host": "localhost"}
        lifespans = real.router.lifespan_context(real), bare.router.lifespan_context(bare)
        async with lifespans[0], lifespans[1], shaped.router.lifespan_context(shaped):
            for n in range(5):
                made = await _ask(real, "POST", "/records", bearer, {"title": f"task {n}"})
                if made[0] != 201:
                    raise SystemExit(f"seeding downstream-api failed: {made[0]} {made[1][:200]!r}")

            async def run(app: Any, headers: dict[str, str], count: int) -> float:
                started = time.process_time()
                for _ in range(count):
                    status, body = await _ask(app, "GET", "/records", headers)
                    if status != 200 or len(json.loads(body)) != 5:
                        raise SystemExit(f"GET /records answered {status}: {body[:200]!r}")
                return (time.process_time() - started) / count * 1e6

            phases = [("downstream-api", real, bearer), ("floor", bare, anyone), ("shaped floor", shaped, anyone)]
            for _, app, headers in phases:
                await run(app, headers, 50)
            for _ in range(2):
                for name, app, headers in phases:
                    os.getppid()
                    say(f"{name:14} {await run(app, headers, requests):8.0f} us CPU a request")
            os.getppid()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _ask(app: Any, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, bytes]:
    """One request as uvicorn would hand it to the app (over TLS, from a loopback peer); its status and body."""
    content = json.dumps(body).encode() if body is not None else b""
    sent = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if body is not None:
        sent += [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "https",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": sent,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 443),
    }  # fmt: skip
    answer: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": content, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["body"]


def count(requests: int, without: str) -> int:
    """Runs the phases under callgrind and prints millions of instructions per request for each."""
    if shutil.which("valgrind") is None:
        print(
            "zt instructions: valgrind is missing; install it with: sudo apt-get install -y valgrind", file=sys.stderr
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="zt-callgrind-") as folder:
        out = Path(folder) / "cg"
        argv = [sys.executable, "-m", "devtools.perf.instructions", "--requests", str(requests), "--without", without]
        command = [*VALGRIND.split(), f"--callgrind-out-file={out}", *argv]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - argv is ours
        if done.returncode != 0:
            print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
            return 1
        dumps = sorted(Path(folder).glob("cg.*"), key=lambda p: int(p.suffix[1:]))
        # Dump 0 is the start-up; then real, floor, shaped floor, twice.
        totals = [_summary(p) / requests / 1e6 for p in dumps[1:7]]
    real, floor_, shaped = ((totals[i] + totals[i + 3]) / 2 for i in range(3))
    print(f"without: {without or 'nothing'}; {requests} requests a phase, two phases each")
    print(f"downstream-api {real:6.2f}M instructions a request ({totals[0]:.2f}, {totals[3]:.2f})")
    print(f"floor          {floor_:6.2f}M instructions a request ({totals[1]:.2f}, {totals[4]:.2f})")
    print(f"shaped floor   {shaped:6.2f}M instructions a request ({totals[2]:.2f}, {totals[5]:.2f})")
    print(f"ratio: downstream-api does {real / floor_:.2f}x the floor's work, {real - floor_:.2f}M more a request")
    print(f"of which FastAPI's for the route's shape {shaped - floor_:.2f}M, the checks' {real - shaped:.2f}M")
    return 0


def _summary(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {dump}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.perf.instructions", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests in each phase (default 200)")
    parser.add_argument("--without", default="", help=f"layers of the real app to switch off: {', '.join(LAYERS)}")
    parser.add_argument("--count", action="store_true", help="run under valgrind and count instructions")
    args = parser.parse_args(argv)
    without = {w for w in args.without.split(",") if w}
    if args.requests < 1 or without - set(LAYERS):
        parser.error(f"--requests must be at least 1 and --without a comma-separated choice of {', '.join(LAYERS)}")
    if args.count:
        return count(args.requests, args.without)
    asyncio.run(_phases(args.requests, without, print))
    return 0


if __name__ == "__main__":
    sys.exit(main())
