"""A user an administrator disables loses access through the api at once, even with a valid token and the
api's on-behalf-of tokens for him cached: the identity provider tells the app over SCIM (as Entra's
provisioning service does), and downstream-api refuses him where the data is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from devtools.ports import free_port

from tests.support.launch import LiveEmulator, LiveService, ready, spawn, start_emulator
from tests.support.tokens import Issuer, apis_at

pytestmark = [pytest.mark.live, pytest.mark.guidance("secure-with-cae")]

BOB_OID = "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"


@dataclass
class Chain:
    emulator: LiveEmulator
    api: LiveService
    downstream: LiveService


@pytest.fixture
def chain(tmp_path: Path, live: LiveEmulator) -> Iterator[Chain]:
    local = tmp_path / "local"
    local.mkdir()
    (local / "tls").symlink_to(live.local_dir / "tls")
    api_port, downstream_port = free_port(), free_port()
    emulator = start_emulator(local, scim_url=f"https://localhost:{api_port}/scim/v2")
    services: list[LiveService] = []
    try:
        logs = tmp_path / "logs"
        services.append(
            spawn(
                "downstream_api",
                "DOWNSTREAM",
                {"port": str(downstream_port), "state_dir": str(tmp_path / "downstream")},
                emulator=emulator,
                log_dir=logs,
                identity="downstream-api",
            )
        )
        services.append(
            spawn(
                "api",
                "API",
                {"port": str(api_port), "downstream_url": f"https://localhost:{downstream_port}"},
                emulator=emulator,
                log_dir=logs,
                identity="api",
            )
        )
        ready(*services)
        yield Chain(emulator, services[1], services[0])
    finally:
        for service in services:
            service.stop()
        emulator.stop()


def test_a_disabled_user_is_refused_every_read_and_write_even_with_cached_on_behalf_of_tokens(chain: Chain) -> None:
    api = apis_at(chain.api.base, chain.downstream.base)["api"]
    bob = Issuer(chain.emulator).token(
        api, oid=BOB_OID, preferred_username="bob@contoso.test", name="Bob Brown", scp="Tasks.ReadWrite"
    )
    headers = {"Authorization": f"Bearer {bob}"}
    with chain.api.http() as http:
        # Bob works: the api exchanges his token for downstream-api's (read and write) and caches both.
        assert http.get("/tasks", headers=headers).status_code == 200
        created = http.post("/tasks", json={"title": "before"}, headers=headers)
        assert created.status_code == 201
        task = created.json()["id"]

        told = chain.emulator.admin("users/disable", upn="bob@contoso.test")
        assert "deactivated in the app" in told["done"]

        # His token is still valid and the api's cached tokens for him too: refused all the same.
        attempts = {
            "GET /tasks": http.get("/tasks", headers=headers),
            "POST /tasks": http.post("/tasks", json={"title": "after"}, headers=headers),
            f"GET /tasks/{task}": http.get(f"/tasks/{task}", headers=headers),
            f"PATCH /tasks/{task}": http.patch(f"/tasks/{task}", json={"done": True}, headers=headers),
            f"DELETE /tasks/{task}": http.delete(f"/tasks/{task}", headers=headers),
            "GET /tasks/shared": http.get("/tasks/shared", headers=headers),
            "GET /me/groups": http.get("/me/groups", headers=headers),
        }
        for what, answer in attempts.items():
            assert answer.status_code in (401, 403), (what, answer.status_code, answer.text[:200])
            if answer.status_code == 403:
                assert answer.json()["error"] == "account_deactivated", what
        # /me still shows the api's own view of the token; downstream-api's part is the refusal.
        me = http.get("/me", headers=headers).json()
        assert me["downstream_api"]["error"] == "account_deactivated"

        chain.emulator.admin("users/enable", upn="bob@contoso.test")
        # Enabled again (and told again): a fresh token of his works as before.
        again = {"Authorization": f"Bearer {Issuer(chain.emulator).token(api, oid=BOB_OID, scp='Tasks.ReadWrite')}"}
        assert http.get("/tasks", headers=again).status_code == 200


def test_without_a_provisioned_app_the_emulator_says_so(tmp_path: Path, live: LiveEmulator) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "tls").symlink_to(live.local_dir / "tls")
    emulator = start_emulator(local)
    try:
        told = emulator.admin("users/disable", upn="bob@contoso.test")
        assert "no app is configured for provisioning" in told["done"]
        with httpx.Client(timeout=10) as http:
            page = http.get(f"{emulator.front}/admin")
        assert page.status_code == 200
    finally:
        emulator.stop()
