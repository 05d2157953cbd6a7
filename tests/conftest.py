"""Fixtures for cross-service tests: a live identity emulator over real HTTPS."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from devtools.paths import repo_root
from devtools.ports import free_port, stack_offset
from devtools.testing import LiveEmulator, start_emulator, stop_process, wait_healthy
from devtools.tls import ca_env


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveEmulator]:
    """One emulator for the whole session; tests that change directory state use `fresh_emulator`."""
    emulator = start_emulator(tmp_path_factory.mktemp("local"))
    # MSAL and azure-identity in this process talk https to it: trust the dev CA the way the
    # services do, through the environment, not by switching verification off.
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ.update(ca_env(emulator.tls))
    yield emulator
    emulator.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def fresh_emulator(tmp_path: Path, live: LiveEmulator) -> Iterator[LiveEmulator]:
    """An emulator of its own, for tests that disable users, revoke sessions or rotate keys."""
    local = tmp_path / "local"
    local.mkdir()
    # Same dev CA as the session emulator, so the process-wide CA bundle trusts both.
    (local / "tls").symlink_to(live.local_dir / "tls")
    emulator = start_emulator(local)
    yield emulator
    emulator.stop()


@pytest.fixture
def emulator_factory(tmp_path: Path, live: LiveEmulator) -> Iterator[Callable[..., LiveEmulator]]:
    """Emulators of their own with non-default settings, e.g. `emulator_factory(code_lifetime="0")`.

    Each gets its own state and ports but the session's dev CA, as `fresh_emulator` does.
    """
    started: list[LiveEmulator] = []

    def start(**settings: str) -> LiveEmulator:
        local = tmp_path / f"local-{len(started)}"
        local.mkdir()
        (local / "tls").symlink_to(live.local_dir / "tls")
        started.append(start_emulator(local, **settings))
        return started[-1]

    yield start
    for emulator in started:
        emulator.stop()


@dataclass
class LiveService:
    """A tier of the chain (`python -m <module>`) running in its own process over real HTTPS."""

    name: str
    process: subprocess.Popen[bytes]
    base: str
    log_path: Path
    ca_bundle: Path

    def http(self, **kwargs: Any) -> httpx.Client:
        tls = ssl.create_default_context(cafile=self.ca_bundle)
        return httpx.Client(base_url=self.base, verify=tls, timeout=10, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        stop_process(self.process)


def launch_service(
    module: str, env_prefix: str, env: dict[str, str], *, emulator: LiveEmulator, log_dir: Path, timeout: float = 30
) -> LiveService:
    """Start `python -m <module>` on a free port with the dev CA's server certificate; return once
    its /healthz answers over https. `<PREFIX>_PORT`, `_TLS_CERT`, `_TLS_KEY` are set here; `env`
    adds the rest (and may override them)."""
    port = free_port()
    tls = emulator.tls
    full_env = {
        **os.environ,
        **ca_env(tls),
        "PYTHONUNBUFFERED": "1",
        f"{env_prefix}_PORT": str(port),
        f"{env_prefix}_TLS_CERT": str(tls.server_cert),
        f"{env_prefix}_TLS_KEY": str(tls.server_key),
        **env,
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{module}-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=repo_root()
        )
    service = LiveService(module, proc, f"https://localhost:{port}", log_path, tls.ca_bundle)
    wait_healthy(proc, f"{service.base}/healthz", tls.ca_bundle, log_path, module, timeout)
    return service


@pytest.fixture(scope="session")
def start_service(live: LiveEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveService]]:
    """`start_service("downstream_api", "DOWNSTREAM", {...}, emulator=live)`: a tier as a subprocess
    over HTTPS, trusting the session's dev CA; stopped at the end of the session if not before."""
    started: list[LiveService] = []
    log_dir = tmp_path_factory.mktemp("service-logs")

    def start(
        module: str, env_prefix: str, env: dict[str, str], *, emulator: LiveEmulator | None = None, timeout: float = 30
    ) -> LiveService:
        service = launch_service(module, env_prefix, env, emulator=emulator or live, log_dir=log_dir, timeout=timeout)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def start_web(emulator: LiveEmulator, folder: Path, **settings: str) -> LiveService:
    """`python -m web` on a free port, signing in at `emulator` with its managed identity; `settings`
    are more WEB_ settings (api_url=..., authority=...); its state and log go in `folder` unless
    state_dir says otherwise. The registered redirect URI is
    http://localhost:8000/...; like Entra, the emulator ignores the port of http loopback redirect
    URIs, so any free port works."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEB_")}
    env.update(
        {
            **ca_env(emulator.tls),
            **emulator.managed_identity_env("web"),
            "PYTHONUNBUFFERED": "1",
            "WEB_PORT": str(port),
            "WEB_AUTHORITY": emulator.authority(),
            "WEB_IDP_ORIGIN": emulator.front,
            "WEB_ADMIN_CONSENT_URL": f"{emulator.front}/admin",
            "WEB_REDIRECT_URI": f"http://localhost:{port}/auth/callback",
            "WEB_POST_LOGOUT_REDIRECT_URI": f"http://localhost:{port}/",
            "WEB_STATE_DIR": str(folder),
            **{f"WEB_{k.upper()}": v for k, v in settings.items()},
        }
    )
    log_path = folder.with_suffix(".log")
    with log_path.open("wb") as log:
        argv = [sys.executable, "-m", "web"]
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=repo_root())
    web = LiveService("web", proc, f"http://localhost:{port}", log_path, emulator.tls.ca_bundle)
    try:
        wait_healthy(proc, f"{web.base}/healthz", emulator.tls.ca_bundle, log_path, "web")
    except BaseException:
        web.stop()
        raise
    return web


@pytest.fixture
def web_factory(tmp_path: Path, live: LiveEmulator) -> Iterator[Callable[..., LiveService]]:
    """`web_factory(api_url=..., **other WEB_ settings)`: start_web against the session's emulator."""
    started: list[LiveService] = []

    def start(**settings: str) -> LiveService:
        web = start_web(live, tmp_path / f"web-{len(started)}", **settings)
        started.append(web)
        return web

    yield start
    for web in started:
        web.stop()


@dataclass
class RunningStack:
    """The whole stack as `make run` starts it (zt run), on ports shifted away from a developer's."""

    process: subprocess.Popen[bytes]
    local_dir: Path
    info: dict[str, Any]
    log_path: Path

    @property
    def web(self) -> str:
        return str(self.info["web"])

    def token_requests(self) -> int:
        with httpx.Client(timeout=5) as client:
            count: int = client.get(f"{self.info['emulator_front_channel']}/admin/stats").json()["token_requests"]
            return count

    def children(self) -> list[int]:
        """Pids whose parent is the runner: the services it started."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids


# Away from a developer's own `make run`, and from the other xdist worker's (devtools.ports).
STACK_PORT_OFFSET = stack_offset(0)
# Every other stack a test run starts, beside the session's, in one place so no two share ports
# (a stack listens on its offset + 8000 to 8444).
CONSENT_STACK_OFFSET = stack_offset(1)
APP_ONLY_STACK_OFFSET = stack_offset(2)
POSTGRES_STACK_OFFSET = stack_offset(3)
MAKE_RUN_STACK_OFFSET = stack_offset(4)
# start_stack waits this long for stack.json: longer than `zt run --ready-timeout` (60 s, 90 s with
# PostgreSQL), so the runner gives up first, says why, and stops what it started.
STACK_START_SECONDS = 150


def start_stack(local: Path, port_offset: int = STACK_PORT_OFFSET, command: list[str] | None = None) -> RunningStack:
    """Start `zt run` (or `command`, e.g. `make run`) in its own process group; wait for stack.json."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "API_", "DOWNSTREAM_", "EMULATOR_"))}
    env["ZT_LOCAL_DIR"] = str(local)
    if command:
        # As from a person's terminal: not inside this test run's virtual environment.
        venv = os.environ.get("VIRTUAL_ENV") or str(Path(sys.executable).parent.parent)
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(venv))
        env.pop("VIRTUAL_ENV", None)
    log_path = local / "zt-run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command or [sys.executable, "-m", "devtools.cli", "run", "--port-offset", str(port_offset)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=repo_root(),
            start_new_session=True,
        )
    stack_file = local / "stack.json"
    deadline = time.monotonic() + STACK_START_SECONDS
    while not stack_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the stack did not come up:\n{log_path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)
    return RunningStack(proc, local, json.loads(stack_file.read_text()), log_path)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(30)


@pytest.fixture(scope="session")
def consent_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A second stack for tests that change consent (a user's, or an administrator's tenant-wide):
    what a person is asked depends on what was granted before, so these tests don't share `stack`."""
    running = start_stack(tmp_path_factory.mktemp("consent-stack"), CONSENT_STACK_OFFSET)
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(30)
