"""`zt run --web-replicas N`: the front passes requests and answers unchanged and spreads them over the
replicas; the stack's web service becomes Redis, its token front, N web processes and the front."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from devtools.layout import Ports
from devtools.paths import repo_root
from devtools.ports import free_port
from devtools.supervisor import Service
from devtools.tls import tls_paths
from devtools.webfarm import app, scale_web
from identity_emulator.stack import home_tenant_id
from yarl import URL


async def _serve(application: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(application)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def _backend(name: str, seen: list[dict[str, Any]]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        seen.append(
            {
                "backend": name,
                "method": request.method,
                "path_qs": request.raw_path,
                "host": request.headers.get("Host"),
                "cookie": request.headers.get("Cookie"),
                "body": await request.text(),
                "type": request.headers.get("Content-Type"),
            }
        )
        response = web.Response(status=303, text="moved", headers={"Location": "/tasks?x=1"})
        response.headers.add("Set-Cookie", "__Host-session=abc; Path=/; Secure; HttpOnly")
        response.headers.add("Set-Cookie", "__Host-signin=; Max-Age=0; Path=/; Secure; HttpOnly")
        return response

    application = web.Application()
    application.router.add_route("*", "/{tail:.*}", echo)
    return application


def test_the_front_passes_everything_through_and_takes_turns() -> None:
    seen: list[dict[str, Any]] = []

    async def scenario() -> list[Any]:
        one, url_one = await _serve(_backend("one", seen))
        two, url_two = await _serve(_backend("two", seen))
        down = f"http://127.0.0.1:{free_port()}"  # a replica not answering: skipped, nothing lost
        front, url = await _serve(app([url_one, down, url_two]))
        answers = []
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client:
                for cookie in ("__Host-session=mine", None, None):
                    async with client.post(
                        URL(f"{url}/auth/callback?a=1&b=%2F", encoded=True),
                        data={"code": "c", "state": "s"},
                        headers={"Host": "localhost:8000", **({"Cookie": cookie} if cookie else {})},
                        allow_redirects=False,
                    ) as r:
                        answers.append((r.status, r.headers.get("Location"), r.headers.getall("Set-Cookie")))
        finally:
            for runner in (front, one, two):
                await runner.cleanup()
        return answers

    answers = asyncio.run(scenario())
    assert [s["backend"] for s in seen] == ["one", "two", "one"]
    first = seen[0]
    assert first["method"] == "POST" and first["path_qs"] == "/auth/callback?a=1&b=%2F"
    assert first["host"] == "localhost:8000" and first["cookie"] == "__Host-session=mine"
    assert first["body"] == "code=c&state=s" and first["type"] == "application/x-www-form-urlencoded"
    assert [s["cookie"] for s in seen[1:]] == [None, None]  # the front kept no cookie of an earlier answer
    status, location, cookies = answers[0]
    assert status == 303 and location == "/tasks?x=1"
    assert cookies == [
        "__Host-session=abc; Path=/; Secure; HttpOnly",
        "__Host-signin=; Max-Age=0; Path=/; Secure; HttpOnly",
    ]


def test_the_web_service_becomes_redis_replicas_and_a_front(tmp_path: Path) -> None:
    web_service = Service(
        "web", ("python", "-m", "web"), lambda: {"WEB_PORT": "9000", "X": "1"}, "http://localhost:9000/healthz", "web"
    )
    api = Service("api", ("python", "-m", "api"), {}, "https://localhost:9001/healthz", "api", wait=False)
    tls = tls_paths(tmp_path / "tls")
    services = scale_web([api, web_service], tmp_path, Ports().shifted(1000), 2, tls)
    assert [s.name for s in services] == ["api", "redis", "redis-front", "web-1", "web-2", "web"]
    redis, token_front, one, two, front = services[1:]
    assert redis.argv[2:] == ("devtools.redis_server", "--root", str(tmp_path / "redis"), "--port", "9379")
    # Clients reach Redis only through the front, which admits the web's managed identity's token alone.
    assert token_front.port == 9380 and token_front.argv[2:] == (
        "devtools.redis_front",
        *("--port", "9380", "--backend-port", "9379", "--password-file", str(tmp_path / "redis" / "front-password")),
        *("--authority", f"https://localhost:9443/{home_tenant_id()}"),
        *("--manifest", str(repo_root() / "infra" / "registrations.yaml"), "--identity", "web"),
        *("--tls-dir", str(tmp_path / "tls"), "--ca-bundle", str(tls.ca_bundle)),
    )
    for replica, port in ((one, 9010), (two, 9011)):
        env = replica.env() if callable(replica.env) else replica.env
        assert env["WEB_PORT"] == str(port) and env["X"] == "1"
        # The web's managed identity's object id (infra/registrations.yaml) as the user, no password, TLS.
        assert env["WEB_SESSION_STORE"] == "rediss://2e2df95e-22f0-462f-87d4-67941fc6141b@localhost:9380/0"
        assert replica.stack_key is None and replica.port == port and not replica.wait
    assert front.stack_key == "web" and front.port == 9000
    assert front.argv[2:] == (
        "devtools.webfarm",
        "--port=9000",
        "--backend=http://127.0.0.1:9010",
        "--backend=http://127.0.0.1:9011",
    )
