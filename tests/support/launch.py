"""The tests' one launcher: an identity emulator, a tier (`python -m <service>`) or a whole stack (`zt run`),
each in its own process over real HTTPS (the web over http://localhost, as in Azure behind TLS ingress),
on ports of this xdist worker's own (devtools.ports), stopped by the test that started it.

Tests use their own emulators and stacks, never a developer's running `make run`; a destructive test
(disable a user, rotate keys) gets an emulator of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.emulator_admin import EmulatorAdmin
from devtools.layout import emulator_settings
from devtools.paths import repo_root
from devtools.ports import free_port, stack_offset
from devtools.processes import stop_process, wait_healthy
from devtools.tls import DevTls, ca_env, ensure_dev_tls

from devtools import credentials

# Set by the platform for a managed identity; removed to prove a service runs without one.
MANAGED_IDENTITY_VARS = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT")


def inherited(*prefixes: str) -> dict[str, str]:
    """This process's environment for a child, less the test runner's own variables (pytest-xdist's run
    id is a random hex string the secret scan of the services' environments rightly flags) and any
    variable with one of `prefixes` (the child's own settings come from the test alone)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", *prefixes))}


@dataclass
class LiveEmulator:
    process: subprocess.Popen[bytes]
    local_dir: Path
    tls: DevTls
    base: str  # https back channel
    front: str  # http front channel
    info: dict[str, Any]
    log_path: Path

    @property
    def state_dir(self) -> Path:
        return self.local_dir / "emulator"

    @property
    def password(self) -> str:
        return str(self.info["demo_password"])

    def authority(self, tenant: str = "contoso") -> str:
        return str(self.info["authorities"][tenant])

    def app_id(self, name: str) -> str:
        from identity_emulator.manifest import load_directory

        root = repo_root()
        d = load_directory(
            root / "infra" / "registrations.yaml", root / "identity-emulator" / "demo" / "directory.yaml"
        )
        app_id: str = d.by_name[name].application_id
        return app_id

    def identity_header(self, service: str) -> str:
        headers: dict[str, str] = json.loads((self.state_dir / "managed-identity-headers.json").read_text())
        return headers[service]

    def managed_identity_env(self, service: str) -> dict[str, str]:
        """What App Service would set for this service's managed identity."""
        return {
            "IDENTITY_ENDPOINT": f"{self.base}/msi/token",
            "IDENTITY_HEADER": self.identity_header(service),
        }

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=self.tls.ca_bundle), timeout=10, **kwargs)

    def managed_identity_token(self, service: str, resource: str) -> str:
        """`service`'s managed identity token for `resource`, fetched as azure-identity fetches it on App Service."""
        with self.http() as http:
            r = http.get(
                f"{self.base}/msi/token",
                params={"api-version": "2019-08-01", "resource": resource},
                headers={"X-IDENTITY-HEADER": self.identity_header(service)},
            )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    @property
    def administrator(self) -> EmulatorAdmin:
        """The admin endpoints, called as the demo administrator (a Graph token, as a script gets one)."""
        return EmulatorAdmin(self.info, self.tls.ca_bundle)

    def admin(self, action: str, **form: str) -> dict[str, Any]:
        return self.administrator.post(action, **form)

    def stats(self) -> dict[str, int]:
        return self.administrator.stats()

    def stop(self) -> None:
        stop_process(self.process)


def start_emulator(local_dir: Path, *, ports: tuple[int, int] | None = None, **settings: str) -> LiveEmulator:
    """Start `python -m identity_emulator` and return once it answers /healthz over https.

    `ports` (back channel, front channel) restarts an emulator where it was, on the same state.
    """
    from identity_emulator.settings import EmulatorSettings
    from identity_emulator.stack import stack_info

    tls = ensure_dev_tls(local_dir)
    port, front = ports or (free_port(), free_port())
    root = repo_root()
    env = {
        **inherited("EMULATOR_"),
        **ca_env(tls),
        **emulator_settings(tls, local_dir / "emulator", root, port, front),
        **{f"EMULATOR_{k.upper()}": v for k, v in settings.items()},
    }
    log_path = local_dir / f"emulator-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "identity_emulator"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    wait_healthy(proc, f"https://localhost:{port}/healthz", tls.ca_bundle, log_path, "identity emulator")
    es = EmulatorSettings(state_dir=local_dir / "emulator", port=port, front_port=front)
    info = stack_info(local_dir / "emulator", es)
    return LiveEmulator(proc, local_dir, tls, f"https://localhost:{port}", f"http://localhost:{front}", info, log_path)


def register_certificate(local_dir: Path, app: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A certificate credential for `app`, valid for a day: the public half registered where the
    emulator looks (devtools.credentials), the private half returned to the test."""
    return credentials.register_certificate(local_dir, app, dt.timedelta(days=1))


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
    """`launch` with its variables by their full names (`env`), as the service fixtures take them."""
    service = spawn(module, env_prefix, {}, emulator=emulator, log_dir=log_dir, env=env)
    ready(service, timeout=timeout)
    return service


def spawn(
    module: str,
    prefix: str,
    settings: dict[str, str],
    *,
    emulator: LiveEmulator,
    log_dir: Path,
    identity: str | None = None,
    env: dict[str, str] | None = None,
    https: bool = True,
) -> LiveService:
    """Start `python -m <module>` on a free port with `settings` as <PREFIX>_* variables and returns at once
    (`ready()` waits for it): tiers that don't call each other at start-up start side by side.
    `identity`: the managed identity it gets from `emulator` (None: none at all, as where no managed
    identity exists); `env`: more variables, by their full names."""
    port = int(settings.get("port") or free_port())
    base_env = {k: v for k, v in inherited(f"{prefix}_").items() if k not in MANAGED_IDENTITY_VARS}
    full_env = {**base_env, **ca_env(emulator.tls), "PYTHONUNBUFFERED": "1"}
    if identity:
        full_env.update(emulator.managed_identity_env(identity))
    full_env.update(
        {f"{prefix}_PORT": str(port), f"{prefix}_AUTHORITY": emulator.authority(), f"{prefix}_GRAPH_URL": emulator.base}
    )
    if https:
        full_env.update(
            {f"{prefix}_TLS_CERT": str(emulator.tls.server_cert), f"{prefix}_TLS_KEY": str(emulator.tls.server_key)}
        )
    full_env.update({f"{prefix}_{k.upper()}": v for k, v in settings.items()})
    full_env.update(env or {})
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{module}-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=repo_root()
        )
    base = f"{'https' if https else 'http'}://localhost:{port}"
    return LiveService(module, proc, base, log_path, emulator.tls.ca_bundle)


def ready(*services: LiveService, timeout: float = 30) -> None:
    """Wait until every one answers /healthz; if one never does, stop them all and say why."""
    try:
        for service in services:
            wait_healthy(
                service.process, f"{service.base}/healthz", service.ca_bundle, service.log_path, service.name, timeout
            )
    except BaseException:
        for service in services:
            service.stop()
        raise


def launch(module: str, prefix: str, settings: dict[str, str], **kwargs: Any) -> LiveService:
    """`spawn`, then `ready`."""
    service = spawn(module, prefix, settings, **kwargs)
    ready(service)
    return service


def web_settings(emulator: LiveEmulator, port: int, folder: Path) -> dict[str, str]:
    """The web app against `emulator` on `port`, its state in `folder`. The registered redirect URI is
    http://localhost:8000/...; like Entra, the emulator ignores the port of http loopback redirect URIs."""
    return {
        "port": str(port),
        "idp_origin": emulator.front,
        "admin_consent_url": f"{emulator.front}/admin",
        "redirect_uri": f"http://localhost:{port}/auth/callback",
        "post_logout_redirect_uri": f"http://localhost:{port}/",
        "state_dir": str(folder),
        "graph_check_seconds": "0",  # Graph on every page, as the stacks here
    }


def start_web(emulator: LiveEmulator, folder: Path, **settings: str) -> LiveService:
    """`python -m web` on a free port, signing in at `emulator` with its managed identity; `settings` are
    more WEB_ settings (api_url=..., authority=...); its state goes in `folder` unless state_dir says otherwise."""
    web = web_settings(emulator, free_port(), folder)
    return launch(
        "web", "WEB", {**web, **settings}, emulator=emulator, log_dir=folder.parent, identity="web", https=False
    )


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

    @property
    def administrator(self) -> EmulatorAdmin:
        """The emulator's admin endpoints, called as the demo administrator."""
        return EmulatorAdmin(self.info)

    def token_requests(self) -> int:
        return self.administrator.stats()["token_requests"]

    def children(self) -> list[int]:
        """Pids whose parent is the runner: the services it started."""
        return children_of(self.process.pid)


def zt(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    """`zt <args>` against `stack`, as a person's shell runs it: no tier's or identity's settings inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDENTITY_", "API_", "DOWNSTREAM_"))}
    env["ZT_LOCAL_DIR"] = str(stack.local_dir)
    return subprocess.run(
        [sys.executable, "-m", "devtools.cli", *args],
        env=env,
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# Away from a developer's own `make run`, and from the other xdist worker's (devtools.ports).
STACK_PORT_OFFSET = stack_offset(0)
# Every other stack a test run starts, beside the session's, in one place so no two share ports
# (a stack listens on its offset + 8000 to 8444).
CONSENT_STACK_OFFSET = stack_offset(1)
APP_ONLY_STACK_OFFSET = stack_offset(2)
POSTGRES_STACK_OFFSET = stack_offset(3)
MAKE_RUN_STACK_OFFSET = stack_offset(4)
RESTARTING_STACK_OFFSET = stack_offset(5)
# start_stack waits this long for stack.json: longer than `zt run --ready-timeout` (60 s, 90 s with
# PostgreSQL), so the runner gives up first, says why, and stops what it started.
STACK_START_SECONDS = 150


def start_stack(local: Path, port_offset: int = STACK_PORT_OFFSET, command: list[str] | None = None) -> RunningStack:
    """Start `zt run` (or `command`, e.g. `make run`) in its own process group; wait for stack.json."""
    env = inherited("WEB_", "API_", "DOWNSTREAM_", "EMULATOR_")
    env["ZT_LOCAL_DIR"] = str(local)
    # Graph on every page, so a revocation shows at the very next click (the default asks every 30 s).
    env.setdefault("WEB_GRAPH_CHECK_SECONDS", "0")
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


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """An ASGI app (a fake tier) served by uvicorn in a thread of this process, over plain http on one of
    this worker's ports: in process, so not a live test. Yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the in-process server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


def alive(pid: int) -> bool:
    """Running, and not a zombie (a zombie has run its course, even if nothing reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def children_of(parent: int) -> list[int]:
    """Pids whose parent is `parent`."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            pids.append(int(stat.parent.name))
    return pids
