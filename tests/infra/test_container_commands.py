"""The container commands are `make run`'s (issue 14): each compose service runs what devtools.layout starts,
with the same settings (container paths for this machine's, and the compose-only differences named below),
and each, run on this machine with the environment compose gives it, starts and passes its own healthcheck.
No Docker engine here, so this is how the stack's commands are proven to start their services."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from devtools.containers import COMPOSE_FILE, command_of, load_compose
from devtools.layout import Ports, default_services
from devtools.paths import repo_root
from devtools.pgtoken import role_map
from devtools.processes import stop_process
from devtools.tls import tls_paths

from devtools import compose, layout, webfarm
from tests.support.launch import MAKE_RUN_STACK_OFFSET, inherited

pytestmark = pytest.mark.guidance("secure-devops-platform-environment-zero-trust")

ROOT = repo_root()
BOX_LOCAL, BOX_ROOT = "/app/.local", "/app"
PORTS = Ports()
# Variables a service reads besides its own prefix's: its managed identity (as Azure sets them) and the CA.
SHARED = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
PREFIXES = {
    "identity-emulator": "EMULATOR_",
    "web": "WEB_",
    "api": "API_",
    "downstream-api": "DOWNSTREAM_",
    "migrate": "DOWNSTREAM_",
}
# Only in the container stack: the gate (the published ports relayed to loopback) and init (first-run material).
COMPOSE_ONLY_SERVICES = {"gate", "init"}
REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)(?::[?-][^}]*)?\}")

Run = tuple[list[str], dict[str, str]]


def compose_runs(values: Mapping[str, str]) -> dict[str, Run]:
    """Each compose service's command (its own, else its image's CMD) and environment, `${...}` filled in."""
    runs = {}
    for name, service in load_compose(ROOT / COMPOSE_FILE)["services"].items():
        command = service.get("command") or command_of((ROOT / service["build"]["dockerfile"]).read_text())
        env = {
            k: REFERENCE.sub(lambda m: values[m.group(1)], str(v))
            for k, v in (service.get("environment") or {}).items()
        }
        runs[name] = (list(command), env)
    return runs


def to_box(value: str, local: Path) -> str:
    """A path of this machine's stack as the container sees it (plain or URL-encoded, as in a database URL)."""
    if value == sys.executable:
        return "python"  # the image's venv Python, first on its PATH
    for host, box in ((str(local), BOX_LOCAL), (str(ROOT), BOX_ROOT)):
        value = value.replace(quote(host, safe=""), quote(box, safe="")).replace(host, box)
    return value


def make_run_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: Mapping[str, str]) -> dict[str, Run]:
    """What `zt run --db postgres` starts (and `--web-replicas 2` adds: Redis and its token front), in
    container terms."""
    for key in list(os.environ):
        if key.startswith(tuple(PREFIXES.values())) or key in SHARED:
            monkeypatch.delenv(key)
    local = tmp_path / ".local"
    (local / "emulator").mkdir(parents=True)
    headers = {i: values[compose.header_variable(i)] for i in compose.IDENTITIES}
    (local / "emulator" / compose.HEADERS_FILE).write_text(json.dumps(headers))
    tls = tls_paths(local / "tls")
    services = default_services(tls, local, ROOT, PORTS, db="postgres")
    scaled = {s.name: s for s in webfarm.scale_web(services, local, PORTS, 2, tls)}
    migration: dict[str, Any] = {}

    def migrate(argv: list[str], env: dict[str, str], **_: object) -> subprocess.CompletedProcess[bytes]:
        migration.update(argv=argv, env=env)
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    monkeypatch.setattr(layout.subprocess, "run", migrate)
    runs: dict[str, tuple[list[str], Mapping[str, str]]] = {}
    for service in [*services, scaled["redis"], scaled["redis-front"]]:
        env = service.env() if callable(service.env) else service.env
        runs[service.name] = (list(service.argv), env)
        if service.prepare is not None:
            service.prepare()
            runs["migrate"] = (migration["argv"], migration["env"])
    web_env = dict(runs["web"][1])
    # The compose web is one of make run's replicas: sessions in Redis, through the token front, logged in to
    # with its managed identity's token. The attack lab fires devtools' catalogue, which the web image (the
    # one deployed) leaves out.
    web_env.update(WEB_SESSION_STORE=scaled["web-1"].env()["WEB_SESSION_STORE"], WEB_ATTACK_LAB="false")  # type: ignore[operator]
    runs["web"] = (runs["web"][0], web_env)
    own = {
        name: (
            [to_box(a, local) for a in argv],
            {
                k: to_box(v, local)
                for k, v in env.items()
                if k in SHARED or (name in PREFIXES and k.startswith(PREFIXES[name]))
            },
        )
        for name, (argv, env) in runs.items()
    }
    return own


def test_the_compose_stack_runs_make_runs_commands_with_its_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = compose.write_env_file(tmp_path / compose.ENV_FILE)
    boxed = compose_runs(values)
    expected = make_run_runs(tmp_path, monkeypatch, values)
    assert set(boxed) - COMPOSE_ONLY_SERVICES == set(expected)
    for name, (argv, env) in expected.items():
        assert boxed[name][0] == argv, f"{name}: the container's command is not make run's"
        assert boxed[name][1] == env, f"{name}: the container's settings are not make run's"


def test_the_compose_only_services_run_devtools_own_commands() -> None:
    runs = compose_runs(dict.fromkeys(map(compose.header_variable, compose.IDENTITIES), "x"))
    assert runs["init"][0] == ["python", "-m", "devtools.compose", "init"]
    assert runs["gate"][0][:3] == ["python", "-m", "devtools.loopgate"]


# -- each command, run on this machine with the environment compose gives it --------------------------------

REDIS_PORTS = {webfarm.redis_port(PORTS.web), PORTS.web + webfarm.REDIS_FRONT_PORT_SHIFT}
DEFAULT_PORTS = "|".join(str(p) for p in sorted({*vars(PORTS).values(), *REDIS_PORTS}))


def to_host(value: str, local: Path, offset: int) -> str:
    """Back from container terms: this machine's paths, and every port shifted into the test's block."""
    for box, host in ((BOX_LOCAL, str(local)), (BOX_ROOT, str(ROOT))):
        value = value.replace(quote(box, safe=""), quote(host, safe="")).replace(box, host)
    value = re.sub(rf"(?<![\w.%-])({DEFAULT_PORTS})(?!\w)", lambda m: str(int(m.group(1)) + offset), value)
    return sys.executable if value == "python" else value


def _get_through(address: str, port: int, ca_bundle: Path | None) -> bytes:
    """GET /healthz at `address`:`port` as the browser asks localhost (Host, and TLS name, localhost)."""
    with socket.create_connection((address, port), timeout=5) as raw:
        sock: socket.socket = raw
        if ca_bundle is not None:
            sock = ssl.create_default_context(cafile=ca_bundle).wrap_socket(raw, server_hostname="localhost")
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode())
        return sock.recv(4096)


STACK_SECONDS = 180


@pytest.fixture
def short_path() -> Iterator[Path]:
    """A short folder: PostgreSQL's unix socket path must fit in 107 bytes, which pytest's own can exceed."""
    path = Path(tempfile.mkdtemp(prefix="ztc-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.live
def test_each_container_command_starts_its_service_on_this_machine(short_path: Path) -> None:
    offset = MAKE_RUN_STACK_OFFSET  # the make run test's block: its stack is gone when it ends, as this one's is
    local = short_path / ".local"
    values = compose.write_env_file(short_path / compose.ENV_FILE)
    services = load_compose(ROOT / COMPOSE_FILE)["services"]
    base = {k: v for k, v in inherited(*PREFIXES.values()).items() if k not in SHARED} | {"PYTHONUNBUFFERED": "1"}
    started: dict[str, subprocess.Popen[bytes]] = {}
    probes: dict[str, Callable[[], bool]] = {}
    done: set[str] = set()

    def host(service: Mapping[str, Any], argv: list[str]) -> tuple[list[str], dict[str, str]]:
        env = {k: to_host(str(v), local, offset) for k, v in (service.get("environment") or {}).items()}
        env = {k: REFERENCE.sub(lambda m: values[m.group(1)], v) for k, v in env.items()}
        return [to_host(a, local, offset) for a in argv], {**base, **env}

    def start(name: str) -> None:
        service = services[name]
        argv = service.get("command") or command_of((ROOT / service["build"]["dockerfile"]).read_text())
        if name == "gate":
            # Here it listens on another loopback address, never on this machine's network.
            argv = [*argv, "--address", "127.0.0.2"]
        command, env = host(service, argv)
        with (short_path / f"{name}.log").open("wb") as out:
            started[name] = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        if name == "gate":
            ports = [int(p) for p in command[3:-2]]
            probes[name] = lambda: all(_accepts("127.0.0.2", p) for p in ports)
        elif str(service.get("restart")) != "no":
            probe, probe_env = host(service, service["healthcheck"]["test"][1:])
            probes[name] = lambda: subprocess.run(probe, env=probe_env, cwd=ROOT, capture_output=True).returncode == 0

    def ready(name: str) -> bool:
        code = started[name].poll()
        if name not in probes:  # a one-shot: done once it exited 0
            if code not in (None, 0):
                raise AssertionError(f"{name} exited with {code}:\n{_log(short_path, name)}")
            return code == 0
        if code is not None:
            raise AssertionError(f"{name} exited with {code}:\n{_log(short_path, name)}")
        return probes[name]()

    deadline = time.monotonic() + STACK_SECONDS
    try:
        # As compose starts them: each once what it depends on is healthy (or completed), side by side.
        while len(done) < len(services):
            for name, service in services.items():
                if name not in started and set(service.get("depends_on") or {}) <= done:
                    start(name)
            done |= {name for name in started if name not in done and ready(name)}
            pending = set(services) - done
            assert time.monotonic() < deadline, f"not healthy within {STACK_SECONDS} s: {', '.join(sorted(pending))}"
            if pending:
                time.sleep(0.2)
        # Through the gate, bytes unchanged: the web's http and the emulator's TLS, end to end.
        ca_bundle = local / "tls" / "ca-bundle.pem"
        assert _get_through("127.0.0.2", PORTS.web + offset, None).startswith(b"HTTP/1.1 200")
        assert _get_through("127.0.0.2", PORTS.emulator + offset, ca_bundle).startswith(b"HTTP/1.1 200")
        # The web's start-up check logged in to Redis through the front, with its managed identity's token.
        web_object_id = role_map(ROOT / "infra" / "registrations.yaml")["web"]
        front_log = (short_path / "redis-front.log").read_text(errors="replace")
        assert f"accepted the token of {web_object_id} (web)" in front_log
    finally:
        for proc in reversed(started.values()):
            stop_process(proc)


def _log(folder: Path, name: str) -> str:
    return (folder / f"{name}.log").read_text(errors="replace")[-3000:]


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False
