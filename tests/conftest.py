"""Fixtures for cross-service tests: a live identity emulator over real HTTPS."""

from __future__ import annotations

import os
import socket
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
from devtools.testing import LiveEmulator, free_port, start_emulator
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
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch_service(module: str, env_prefix: str, env: dict[str, str], *, emulator: LiveEmulator,
                   log_dir: Path, timeout: float = 30) -> LiveService:
    """Start `python -m <module>` on a free port with the dev CA's server certificate; return once
    its /healthz answers over https. `<PREFIX>_PORT`, `_TLS_CERT`, `_TLS_KEY` are set here; `env`
    adds the rest (and may override them)."""
    port = free_port()
    tls = emulator.tls
    full_env = {
        **os.environ, **ca_env(tls), "PYTHONUNBUFFERED": "1",
        f"{env_prefix}_PORT": str(port),
        f"{env_prefix}_TLS_CERT": str(tls.server_cert),
        f"{env_prefix}_TLS_KEY": str(tls.server_key),
        **env,
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{module}-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", module], env=full_env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=repo_root())
    service = LiveService(module, proc, f"https://localhost:{port}", log_path, tls.ca_bundle)
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=ssl.create_default_context(cafile=tls.ca_bundle), timeout=2) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{module} exited with {proc.returncode}:\n{service.log()}")
            try:
                if client.get(f"{service.base}/healthz").status_code == 200:
                    return service
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                service.stop()
                raise RuntimeError(f"{module} not healthy after {timeout} s:\n{service.log()}")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def start_service(
    live: LiveEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., LiveService]]:
    """`start_service("downstream_api", "DOWNSTREAM", {...}, emulator=live)`: a tier as a subprocess
    over HTTPS, trusting the session's dev CA; stopped at the end of the session if not before."""
    started: list[LiveService] = []
    log_dir = tmp_path_factory.mktemp("service-logs")

    def start(module: str, env_prefix: str, env: dict[str, str], *, emulator: LiveEmulator | None = None,
              timeout: float = 30) -> LiveService:
        service = launch_service(module, env_prefix, env, emulator=emulator or live, log_dir=log_dir,
                                 timeout=timeout)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


# The web's registered redirect URI is http://localhost:8000/auth/callback (infra/registrations.yaml),
# so a live web app must listen on exactly that port for sign-in to come back to it.
WEB_PORT = 8000


@pytest.fixture
def web_factory(tmp_path: Path, live: LiveEmulator) -> Iterator[Callable[..., LiveService]]:
    """`web_factory(api_url=..., **other WEB_ settings)`: `python -m web` on http://localhost:8000,
    signing in at `live` with its managed identity. Fails (never skips) when port 8000 is taken."""
    started: list[LiveService] = []

    def start(**settings: str) -> LiveService:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", WEB_PORT))
            except OSError:
                pytest.fail(f"port {WEB_PORT} is in use, and the live web tests need it: the web app's "
                            f"registered redirect URI is http://localhost:{WEB_PORT}/auth/callback. Stop "
                            "whatever holds it (a `make run`?) and run again.")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEB_")}
        env.update({
            **ca_env(live.tls), **live.managed_identity_env("web"), "PYTHONUNBUFFERED": "1",
            "WEB_PORT": str(WEB_PORT), "WEB_AUTHORITY": live.authority(), "WEB_IDP_ORIGIN": live.front,
            "WEB_STATE_DIR": str(tmp_path / f"web-{len(started)}"),
            **{f"WEB_{k.upper()}": v for k, v in settings.items()},
        })
        log_path = tmp_path / f"web-{len(started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "web"], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=repo_root())
        web = LiveService("web", proc, f"http://localhost:{WEB_PORT}", log_path, live.tls.ca_bundle)
        started.append(web)
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=2) as client:
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"web exited with {proc.returncode}:\n{web.log()}")
                try:
                    if client.get(f"{web.base}/healthz").status_code == 200:
                        return web
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"web not healthy after 30 s:\n{web.log()}")
                time.sleep(0.05)

    yield start
    for web in started:
        web.stop()
