"""The processes `make bench` drives: the real stack as `make run` starts it, the floor, a signed-in person."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from devtools.emulator_admin import EmulatorAdmin
from devtools.processes import stop_process, wait_healthy
from devtools.signin import FormBrowser, parse_forms
from devtools.tls import DevTls, ca_env

STACK_SECONDS = 150

# One user at full speed through one replica (over 1,000 requests a second) is what the tiers' rate limits are
# there to refuse. The bench raises them, as an operator would for a load test: every request is still counted
# (the cost measured), none refused (a refusal is not the chain's speed; `make bench` fails on any).
UNLIMITED = {
    f"{tier}_RATE_{setting}": value
    for tier in ("WEB", "API", "DOWNSTREAM")
    for setting, value in (
        ("PEER_PER_SECOND", "1000000"),
        ("PEER_BURST", "10000000"),
        ("CALLER_PER_SECOND", "1000000"),
        ("CALLER_BURST", "10000000"),
    )
}


class BenchError(RuntimeError):
    """Something a person can act on; printed without a traceback."""


@dataclass
class Stack:
    info: dict[str, Any]
    local: Path

    def identity(self, name: str) -> dict[str, str]:
        """What the platform gives workload `name` for its managed identity (the emulator's endpoint)."""
        headers = json.loads((self.local / "emulator" / "managed-identity-headers.json").read_text())
        return {"IDENTITY_ENDPOINT": f"{self.info['emulator']}/msi/token", "IDENTITY_HEADER": headers[name]}

    def stats(self) -> dict[str, int]:
        # As the demo administrator: the emulator's counters are behind its admin sign-in.
        return EmulatorAdmin(self.info).stats()


@contextmanager
def real_stack(local: Path, port_offset: int, db: str = "sqlite") -> Iterator[Stack]:
    """`zt run` in a process group of its own, with its own .local folder (keys kept between runs)."""
    local.mkdir(mode=0o700, parents=True, exist_ok=True)
    stack_file = local / "stack.json"
    stack_file.unlink(missing_ok=True)
    log_path = local / "zt-run.log"
    env = {**os.environ, "ZT_LOCAL_DIR": str(local), **UNLIMITED}
    command = [sys.executable, "-m", "devtools.cli", "run", "--port-offset", str(port_offset), "--db", db]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - argv is ours
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STACK_SECONDS
        while not stack_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the stack did not start; its log:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield Stack(json.loads(stack_file.read_text()), local)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def floor(
    tls: DevTls, logs: Path, ports: tuple[int, int, int], database_url: str, identity: dict[str, str] | None = None
) -> Iterator[str]:
    """The floor's three tiers (perf/floor.py); yields the web tier's URL. `identity`: the managed identity's
    endpoint and header, for a database that takes tokens only."""
    web, api, downstream = ports
    env = {**os.environ, **ca_env(tls), "FLOOR_TLS_CERT": str(tls.server_cert), "FLOOR_TLS_KEY": str(tls.server_key)}
    env.update(identity or {})
    specs = [
        ("downstream", downstream, database_url, f"https://localhost:{downstream}/records"),
        ("api", api, f"https://localhost:{downstream}", f"https://localhost:{api}/tasks"),
        ("web", web, f"https://localhost:{api}", f"http://localhost:{web}/tasks"),
    ]
    processes: list[subprocess.Popen[bytes]] = []
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for tier, port, target, health in specs:
            log_path = logs / f"floor-{tier}.log"
            with log_path.open("wb") as log:
                command = [sys.executable, "-m", "devtools.perf.floor", tier, str(port), target]
                process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
            processes.append(process)
            wait_healthy(process, health, tls.ca_bundle, log_path, f"floor {tier}")
        yield f"http://localhost:{web}"
    finally:
        for process in reversed(processes):
            stop_process(process)


def web_cookie(stack: Stack, user: str) -> str:
    """Sign `user` in at the web app as a browser would; the session cookie for the load generator."""
    web = str(stack.info["web"])
    with httpx.Client(follow_redirects=False, timeout=15) as http:
        login = http.get(f"{web}/auth/login")
        signin_cookie = login.cookies.get("__Host-signin") or _set_cookie(login, "__Host-signin")
        page = FormBrowser(http).sign_in(login.headers["location"], user, str(stack.info["demo_password"]))
        forms, text = parse_forms(page.text)
        if page.status_code != 200 or not forms:
            raise BenchError(f"signing {user} in at the emulator failed ({page.status_code}): {text[:300]}")
        back = http.post(
            urljoin(str(page.url), forms[0].action),
            data=forms[0].fields,
            headers={"Cookie": f"__Host-signin={signin_cookie}"},
        )
        session = _set_cookie(back, "__Host-session")
        cookie = f"__Host-session={session}"
        check = http.get(f"{web}/tasks", headers={"Cookie": cookie})
        if check.status_code != 200 or "Your tasks" not in check.text:
            raise BenchError(f"the signed-in tasks page answered {check.status_code}")
        return cookie


def _set_cookie(response: httpx.Response, name: str) -> str:
    # __Host- cookies are Secure; on http://localhost a browser sends them, httpx's jar doesn't: read them here.
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key.strip() == name:
            return rest.split(";", 1)[0]
    raise BenchError(f"no {name} cookie in the answer ({response.status_code})")
