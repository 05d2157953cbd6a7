"""`zt run --web-replicas N`: the web tier scaled out on this machine, as behind a load balancer in Azure.

A private Redis holds the sessions and sealed token caches (devtools.redis_server), reached only through
its token front (devtools.redis_front: TLS, the web's managed identity token as the password, as Azure Cache
for Redis with Microsoft Entra authentication); N web processes share it (and the sealing key, in the one
state folder), and a front on the usual web port sends each request to the next replica in turn, so
consecutive requests of one person land on different processes.

The front is dev tooling, not a production proxy: no TLS, no streaming, one retry policy (the next replica
when one refuses the connection, which never sent the request). It passes the request unchanged: method,
path and query, Host, Cookie, form bodies; and the answer: status, Location, every Set-Cookie. It keeps
no cookies of its own.
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from devtools.layout import Ports, home_authority
from devtools.paths import repo_root
from devtools.pgtoken import role_map
from devtools.redis_front import answers
from devtools.redis_server import FRONT_LOGIN_FILE, answers_ping, redis_server_bin
from devtools.supervisor import Service, Summary
from devtools.tls import DevTls

Env = Mapping[str, str] | Callable[[], Mapping[str, str]]
# Within the stack's own port block (8000-8444 plus --port-offset): replicas on 8010-8017 (zt run allows
# up to 8), Redis on 8379 (loopback, private), its token front on 8380.
REPLICA_PORT_SHIFT = 10
REDIS_PORT_SHIFT = 379
REDIS_FRONT_PORT_SHIFT = 380
# Per RFC 9110 7.6.1 these describe one connection, not the message: never forwarded.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade"}
    | {"transfer-encoding", "content-length"}
)
MAX_BODY_BYTES = 8 * 1024 * 1024  # larger than any form the web accepts: the web app refuses, not the front
UPSTREAM_TIMEOUT_SECONDS = 60


def replica_ports(web_port: int, replicas: int) -> list[int]:
    return [web_port + REPLICA_PORT_SHIFT + i for i in range(replicas)]


def redis_port(web_port: int) -> int:
    return web_port + REDIS_PORT_SHIFT


def store_url(web_port: int) -> str:
    """WEB_SESSION_STORE of the replicas: the web's managed identity's object id as the user, TLS to the front."""
    web_object_id = role_map(repo_root() / "infra" / "registrations.yaml")["web"]
    return f"rediss://{web_object_id}@localhost:{web_port + REDIS_FRONT_PORT_SHIFT}/0"


def scale_web(services: Sequence[Service], local: Path, ports: Ports, replicas: int, tls: DevTls) -> list[Service]:
    """`services` with the one web process replaced by Redis and its token front (checking the emulator's
    tokens), `replicas` web processes and the front."""
    redis_server_bin()  # a clear message now if Redis is not installed, not a dead child later
    web_port, authority = ports.web, home_authority(f"https://localhost:{ports.emulator}")
    [front] = [s for s in services if s.name == "web"]
    port, token_port = redis_port(web_port), web_port + REDIS_FRONT_PORT_SHIFT
    store = store_url(web_port)
    base = {**os.environ, "PYTHONUNBUFFERED": "1"}
    redis = Service(
        "redis",
        (*front.argv[:2], "devtools.redis_server", "--root", str(local / "redis"), "--port", str(port)),
        base,
        f"tcp://127.0.0.1:{port}",
        ready=lambda: answers_ping(port),
    )
    checks = ("--authority", authority, "--manifest", str(repo_root() / "infra" / "registrations.yaml"))
    redis_front = Service(
        "redis-front",
        (
            *front.argv[:2],
            "devtools.redis_front",
            *("--port", str(token_port), "--backend-port", str(port)),
            *("--password-file", str(local / "redis" / FRONT_LOGIN_FILE), *checks, "--identity", "web"),
            *("--tls-dir", str(tls.ca_cert.parent), "--ca-bundle", str(tls.ca_bundle)),
        ),
        base,
        f"tcp://127.0.0.1:{token_port}",
        ready=lambda: answers(token_port, tls.ca_bundle),
    )
    copies = [
        Service(
            f"web-{i + 1}",
            front.argv,
            _replica_env(front.env, replica, store),
            f"http://localhost:{replica}/healthz",
            wait=False,
        )
        for i, replica in enumerate(replica_ports(web_port, replicas))
    ]
    backends = [f"--backend=http://127.0.0.1:{p}" for p in replica_ports(web_port, replicas)]
    proxy = replace(front, argv=(*front.argv[:2], "devtools.webfarm", f"--port={web_port}", *backends), env=base)
    others = [s for s in services if s is not front]
    return [*others, redis, redis_front, *copies, proxy]


def _replica_env(env: Env, port: int, store: str) -> Callable[[], Mapping[str, str]]:
    def replica() -> Mapping[str, str]:
        return {**(env() if callable(env) else env), "WEB_PORT": str(port), "WEB_SESSION_STORE": store}

    return replica


def summary(web_port: int, replicas: int, then: Summary) -> Summary:
    """What the summary says of the web tier (which front, which store), then `then`'s lines."""

    def lines(info: Mapping[str, object]) -> Iterable[str]:
        ports = ", ".join(str(p) for p in replica_ports(web_port, replicas))
        yield f"  {'web replicas':<18} {replicas} on ports {ports}, behind devtools.webfarm (a dev proxy)"
        yield f"  {'session store':<18} {store_url(web_port)} (sealed records, no disk)"
        yield f"  {'':<18} (devtools.redis_front checks the Entra token; Redis on 127.0.0.1:{redis_port(web_port)})"
        yield from then(info)

    return lines


class Front:
    def __init__(self, backends: Sequence[str]) -> None:
        self.backends = list(backends)
        self._next = itertools.cycle(self.backends)
        self._client: aiohttp.ClientSession | None = None

    async def start(self, _app: web.Application) -> None:
        self._client = aiohttp.ClientSession(
            # A shared jar would hand one person's cookies to the next: cookies are the browser's alone.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_SECONDS),
        )

    async def stop(self, _app: web.Application) -> None:
        if self._client is not None:
            await self._client.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self._client is not None
        body = await request.read()
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
        for _ in self.backends:
            backend = next(self._next)
            try:
                async with self._client.request(
                    request.method,
                    URL(backend + request.rel_url.raw_path_qs, encoded=True),
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                ) as answer:
                    content = await answer.read()
                    kept = CIMultiDict((k, v) for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP)
                    return web.Response(status=answer.status, body=content, headers=kept)
            except aiohttp.ClientConnectorError:
                continue  # not connected, so nothing was sent: the next replica may take it
        return web.Response(status=502, text="No web replica is answering.\n")


def app(backends: Sequence[str]) -> web.Application:
    front = Front(backends)
    application = web.Application(client_max_size=MAX_BODY_BYTES)
    application.on_startup.append(front.start)
    application.on_cleanup.append(front.stop)
    application.router.add_route("*", "/{tail:.*}", front.handle)
    return application


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.webfarm", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", action="append", required=True, metavar="URL")
    args = parser.parse_args(argv)
    print(f"devtools.webfarm: http://localhost:{args.port} -> {', '.join(args.backend)}", flush=True)
    web.run_app(app(args.backend), host="127.0.0.1", port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
