"""The three tiers (web, api, downstream-api) against an emulator of the test's choosing, each in its
own process over real HTTP(S), with the credential each confidential client should use.

`tests.conftest.stack` runs `zt run` with fixed settings; tests that need an emulator with other
settings (short token lifetimes) or clients with another credential (certificates) start the chain
here. Every process is stopped by `Chain.stop()`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from devtools.paths import repo_root
from devtools.ports import free_port
from devtools.testing import LiveEmulator, stop_process, wait_healthy
from devtools.tls import ca_env

from tests.conftest import LiveService
from tests.person import Person

# Set by the platform for a managed identity; removed to prove a service runs without one.
MANAGED_IDENTITY_VARS = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT")


def _launch(
    module: str, prefix: str, settings: dict[str, str], *, emulator: LiveEmulator, log_dir: Path, identity: str | None
) -> LiveService:
    port = int(settings.get("port") or free_port())
    tls = emulator.tls
    env = {k: v for k, v in os.environ.items() if not k.startswith(f"{prefix}_") and k not in MANAGED_IDENTITY_VARS}
    env.update(ca_env(tls))
    if identity:
        env.update(emulator.managed_identity_env(identity))
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            f"{prefix}_PORT": str(port),
            f"{prefix}_AUTHORITY": emulator.authority(),
            **{f"{prefix}_{k.upper()}": v for k, v in settings.items()},
        }
    )
    https = module != "web"  # the web serves http://localhost, as under `zt run`; TLS ends at ingress in Azure
    if https:
        env[f"{prefix}_TLS_CERT"] = str(tls.server_cert)
        env[f"{prefix}_TLS_KEY"] = str(tls.server_key)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{module}-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=repo_root()
        )
    base = f"{'https' if https else 'http'}://localhost:{port}"
    service = LiveService(module, proc, base, log_path, tls.ca_bundle)
    try:
        wait_healthy(proc, f"{base}/healthz", tls.ca_bundle, log_path, module)
    except RuntimeError:
        stop_process(proc)
        raise
    return service


@dataclass
class Chain:
    emulator: LiveEmulator
    workdir: Path
    services: list[LiveService] = field(default_factory=list)

    @property
    def web(self) -> LiveService:
        return self.services[-1]

    @property
    def api(self) -> LiveService:
        return self.services[1]

    @property
    def web_state(self) -> Path:
        return self.workdir / "web-state"

    def logs(self) -> dict[str, str]:
        return {s.name: s.log_path.read_text(errors="replace") for s in self.services}

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()

    def sign_in(self, person: Person, user: str = "alice@contoso.test", next_path: str = "/tasks") -> None:
        r = person.get(f"{self.web.base}/auth/login?next={next_path}")
        assert r.status_code == 302, r.text[:300]
        action, fields = person.sign_in_at_emulator(r.headers["location"], self.emulator.password, user)
        r = person.post(action, fields)
        assert r.status_code == 303 and r.headers["location"] == next_path, r.text[:500]

    def token_requests(self) -> int:
        with httpx.Client(timeout=5) as client:
            count: int = client.get(f"{self.emulator.front}/admin/stats").json()["token_requests"]
            return count

    def token_caches(self) -> list[dict[str, Any]]:
        return web_token_caches(self.web_state)


def web_token_caches(state_dir: Path) -> list[dict[str, Any]]:
    """Every MSAL cache in the web's session store, decrypted with the web's own key, as an attacker
    holding both would see them: the values the tests must then never find anywhere else."""
    from web.session_store import Sealer

    sealer = Sealer(base64.b64decode((state_dir / "session-key").read_bytes().strip()))
    db = sqlite3.connect(state_dir / "sessions.sqlite3")
    try:
        rows = db.execute("SELECT key, token_cache FROM sessions WHERE token_cache IS NOT NULL").fetchall()
    finally:
        db.close()
    caches = []
    for key, blob in rows:
        raw = sealer.open(blob, f"{key}|token_cache")
        assert raw is not None, "a token cache the web's own key does not open"
        caches.append(json.loads(raw))
    return caches


def cache_secrets(caches: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The token values held in MSAL caches, by kind (AccessToken, RefreshToken, IdToken)."""
    found: dict[str, list[str]] = {}
    for cache in caches:
        for kind in ("AccessToken", "RefreshToken", "IdToken"):
            found.setdefault(kind, []).extend(str(e["secret"]) for e in (cache.get(kind) or {}).values())
    return found


def start_chain(
    emulator: LiveEmulator,
    workdir: Path,
    *,
    web: dict[str, str] | None = None,
    api: dict[str, str] | None = None,
    managed_identities: bool = True,
) -> Chain:
    """downstream-api, api, web (in that order), each trusting `emulator`. With
    `managed_identities=False` the web and api get no managed-identity endpoint at all, so they
    must authenticate with what `web`/`api` settings configure (a certificate)."""
    chain = Chain(emulator, workdir)
    logs = workdir / "logs"
    try:
        chain.services.append(
            _launch(
                "downstream_api",
                "DOWNSTREAM",
                {"state_dir": str(workdir / "downstream-state")},
                emulator=emulator,
                log_dir=logs,
                identity="downstream-api",
            )
        )
        chain.services.append(
            _launch(
                "api",
                "API",
                {"downstream_url": chain.services[0].base, **(api or {})},
                emulator=emulator,
                log_dir=logs,
                identity="api" if managed_identities else None,
            )
        )
        port = free_port()
        chain.services.append(
            _launch(
                "web",
                "WEB",
                {
                    "port": str(port),
                    "api_url": chain.services[1].base,
                    "idp_origin": emulator.front,
                    "redirect_uri": f"http://localhost:{port}/auth/callback",
                    "post_logout_redirect_uri": f"http://localhost:{port}/",
                    "state_dir": str(chain.web_state),
                    **(web or {}),
                },
                emulator=emulator,
                log_dir=logs,
                identity="web" if managed_identities else None,
            )
        )
    except BaseException:
        chain.stop()
        raise
    return chain


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no form with a CSRF token on the page"
    return match.group(1)
