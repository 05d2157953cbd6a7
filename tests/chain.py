"""The three tiers (web, api, downstream-api) against an emulator of the test's choosing, each in its
own process over real HTTP(S), with the credential each confidential client should use.

`tests.conftest.stack` runs `zt run` with fixed settings; tests that need an emulator with other
settings (short token lifetimes) or clients with another credential (certificates) start the chain
here. Every process is stopped by `Chain.stop()`.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.ports import free_port

from tests.support.launch import LiveEmulator, LiveService, ready, spawn, web_settings
from tests.support.people import Person


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
        return self.emulator.stats()["token_requests"]

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
    downstream: dict[str, str] | None = None,
    managed_identities: bool = True,
) -> Chain:
    """downstream-api, api and web side by side (each knows the next one's address before it starts), each
    trusting `emulator`. With `managed_identities=False` the web and api get no managed-identity endpoint
    at all, so they must authenticate with what `web`/`api` settings configure (a certificate)."""
    chain = Chain(emulator, workdir)
    logs = workdir / "logs"
    downstream_port, api_port, web_port = free_port(), free_port(), free_port()
    downstream_settings = {
        "port": str(downstream_port),
        "state_dir": str(workdir / "downstream-state"),
        **(downstream or {}),
    }
    api_settings = {"port": str(api_port), "downstream_url": f"https://localhost:{downstream_port}", **(api or {})}
    web_settings_ = {
        **web_settings(emulator, web_port, chain.web_state),
        "api_url": f"https://localhost:{api_port}",
        **(web or {}),
    }
    try:
        chain.services.append(
            spawn(
                "downstream_api",
                "DOWNSTREAM",
                downstream_settings,
                emulator=emulator,
                log_dir=logs,
                identity="downstream-api",
            )
        )
        chain.services.append(
            spawn(
                "api",
                "API",
                api_settings,
                emulator=emulator,
                log_dir=logs,
                identity="api" if managed_identities else None,
            )
        )
        chain.services.append(
            spawn(
                "web",
                "WEB",
                web_settings_,
                emulator=emulator,
                log_dir=logs,
                identity="web" if managed_identities else None,
                https=False,
            )
        )
        ready(*chain.services)
    except BaseException:
        chain.stop()
        raise
    return chain


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no form with a CSRF token on the page"
    return match.group(1)
