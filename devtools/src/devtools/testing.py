"""Start a real identity emulator for tests: its own ports, state and dev CA, over real HTTPS.

Tests use this instead of `zt run` so they never collide with a developer's running stack, and so
a destructive test (disable a user, rotate keys) can have an emulator of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools import credentials
from devtools.layout import emulator_settings
from devtools.paths import repo_root
from devtools.ports import free_port
from devtools.tls import DevTls, ca_env, ensure_dev_tls


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a bounded wait for a clean exit, then SIGKILL: a test never leaves a process behind."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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

    def admin(self, action: str, **form: str) -> dict[str, Any]:
        with httpx.Client(timeout=10) as c:
            r = c.post(f"{self.front}/admin/{action}", data=form, headers={"Accept": "application/json"})
            r.raise_for_status()
            result: dict[str, Any] = r.json()
            return result

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
        **os.environ,
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


def wait_healthy(
    proc: subprocess.Popen[bytes], url: str, ca_bundle: Path, log_path: Path, name: str, timeout: float = 30
) -> None:
    """Poll `url` until it answers 200; fail with the child's own output if it exits or never does."""
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=ssl.create_default_context(cafile=ca_bundle), timeout=2, trust_env=False) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{name} not healthy after {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)


def register_certificate(local_dir: Path, app: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A certificate credential for `app`, valid for a day: the public half registered where the
    emulator looks (devtools.credentials), the private half returned to the test."""
    return credentials.register_certificate(local_dir, app, dt.timedelta(days=1))
