"""downstream-api as a process over HTTPS, called with real tokens from the identity emulator.

The tokens are what the chain really carries: alice signs in to the web app (auth code + PKCE),
and the api exchanges her token on-behalf-of her for downstream-api, authenticating with its
managed identity as a federated credential.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msal
import pytest

from tests.contract.helpers import (
    api_scope,
    claims_of,
    confidential_client,
    downstream_scope,
    managed_identity_assertion,
    sign_in,
    web_client,
)
from tests.support.launch import LiveEmulator, LiveService

pytestmark = pytest.mark.live

REALM = 'Bearer realm="downstream-api"'


@dataclass(frozen=True)
class Tokens:
    alice: str  # OBO, Records.ReadWrite
    bob: str  # OBO, Records.ReadWrite
    alice_read_only: str  # OBO, Records.Read
    alice_for_api: str  # what the web app holds: audience api, not downstream-api


def obo_token(
    live: LiveEmulator, mp: pytest.MonkeyPatch, user: str, api_scopes: list[str], downstream: str
) -> tuple[str, str]:
    """(token the web app got for the api, token the api got on-behalf-of the user for downstream-api)."""
    signed_in = sign_in(live, web_client(live, mp), user, api_scopes)
    assert "access_token" in signed_in, signed_in
    api = confidential_client(live, "api", {"client_assertion": managed_identity_assertion(live, "api", mp)})
    result = api.acquire_token_on_behalf_of(signed_in["access_token"], [downstream_scope(live, downstream)])
    assert "access_token" in result, result
    return signed_in["access_token"], result["access_token"]


@pytest.fixture(scope="module")
def tokens(live: LiveEmulator) -> Iterator[Tokens]:
    with pytest.MonkeyPatch.context() as mp:
        write, read = [api_scope(live, "Tasks.ReadWrite")], [api_scope(live, "Tasks.Read")]
        for_api, alice = obo_token(live, mp, "alice@contoso.test", write, "Records.ReadWrite")
        _, bob = obo_token(live, mp, "bob@contoso.test", write, "Records.ReadWrite")
        _, read_only = obo_token(live, mp, "alice@contoso.test", read, "Records.Read")
        yield Tokens(alice, bob, read_only, for_api)


def downstream_env(emulator: LiveEmulator, state_dir: Path) -> dict[str, str]:
    return {
        "DOWNSTREAM_AUTHORITY": emulator.authority(),
        "DOWNSTREAM_STATE_DIR": str(state_dir),
        "DOWNSTREAM_CLIENT_ID": emulator.app_id("downstream-api"),
        "DOWNSTREAM_ALLOWED_CLIENT_IDS": emulator.app_id("api"),
        "DOWNSTREAM_LOG_LEVEL": "warning",
    }


@dataclass
class Downstream:
    """The module's downstream-api process; `restart()` replaces it with a new one on the same data."""

    env: dict[str, str]
    start: Callable[..., LiveService]
    service: LiveService

    def http(self, **kwargs: Any) -> httpx.Client:
        return self.service.http(**kwargs)

    def restart(self) -> None:
        self.service.stop()
        self.service = self.start("downstream_api", "DOWNSTREAM", self.env)


@pytest.fixture(scope="module")
def downstream(
    live: LiveEmulator, start_service: Callable[..., LiveService], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Downstream]:
    env = downstream_env(live, tmp_path_factory.mktemp("ds"))
    running = Downstream(env, start_service, start_service("downstream_api", "DOWNSTREAM", env))
    yield running
    running.service.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_crud_for_alice_with_her_on_behalf_of_token(downstream: Downstream, tokens: Tokens, live: LiveEmulator) -> None:
    alice = bearer(tokens.alice)
    with downstream.http(headers=alice) as http:
        me = http.get("/me").json()
        assert me["object_id"] == claims_of(tokens.alice_for_api)["oid"]
        assert me["tenant_id"] == live.info["tenants"]["contoso"]
        assert me["calling_app"] == live.app_id("api")
        assert me["scopes"] == ["Records.ReadWrite"]
        assert me["subject"] != claims_of(tokens.alice_for_api)["sub"]  # pairwise per API

        created = http.post("/records", json={"title": " Write the report "})
        assert created.status_code == 201, created.text
        record = created.json()
        assert record["title"] == "Write the report" and record["done"] is False
        assert record in http.get("/records").json()
        assert http.get(f"/records/{record['id']}").json() == record
        patched = http.patch(f"/records/{record['id']}", json={"done": True, "title": "Report written"})
        assert patched.json() == {**record, "done": True, "title": "Report written"}
        assert http.delete(f"/records/{record['id']}").status_code == 204
        assert http.get(f"/records/{record['id']}").status_code == 404


def test_bob_cannot_see_change_or_delete_alices_record(downstream: Downstream, tokens: Tokens) -> None:
    with downstream.http() as http:
        record = http.post("/records", json={"title": "alice only"}, headers=bearer(tokens.alice)).json()
        url, bob = f"/records/{record['id']}", bearer(tokens.bob)
        assert http.get(url, headers=bob).status_code == 404
        assert http.patch(url, json={"title": "bob's now"}, headers=bob).status_code == 404
        assert http.delete(url, headers=bob).status_code == 404
        assert record["id"] not in {r["id"] for r in http.get("/records", headers=bob).json()}
        assert http.get(url, headers=bearer(tokens.alice)).json() == record


def test_a_token_for_the_api_is_refused_as_invalid_token(downstream: Downstream, tokens: Tokens) -> None:
    with downstream.http() as http:
        r = http.get("/records", headers=bearer(tokens.alice_for_api))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == (
        f'{REALM}, error="invalid_token", error_description="The access token is not meant for this API."'
    )


def test_no_token_is_401_without_an_error(downstream: Downstream) -> None:
    with downstream.http() as http:
        r = http.get("/records")
        assert r.status_code == 401 and r.headers["www-authenticate"] == REALM
        assert http.get("/healthz").json() == {"status": "ok"}


def test_a_read_only_token_can_read_but_not_write(downstream: Downstream, tokens: Tokens) -> None:
    with downstream.http(headers=bearer(tokens.alice_read_only)) as http:
        assert http.get("/records").status_code == 200
        r = http.post("/records", json={"title": "nope"})
    assert r.status_code == 403
    assert r.headers["www-authenticate"].startswith(f'{REALM}, error="insufficient_scope"')
    assert r.headers["www-authenticate"].endswith('scope="Records.ReadWrite"')


def test_restart_keeps_the_data(downstream: Downstream, tokens: Tokens) -> None:
    with downstream.http(headers=bearer(tokens.alice)) as http:
        record = http.post("/records", json={"title": "survives a restart"}).json()
    downstream.restart()  # a new process on the same SQLite file: migrations find it at head
    with downstream.http(headers=bearer(tokens.alice)) as http:
        assert http.get(f"/records/{record['id']}").json() == record


def test_a_token_the_web_app_got_for_downstream_api_itself_is_refused(
    fresh_emulator: LiveEmulator,
    start_service: Callable[..., LiveService],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Only an admin could let the web app ask for Records.* at all (no consent for it in the manifest);
    # even then downstream-api refuses: the calling app (azp) must be the api, on the user's behalf.
    emu = fresh_emulator
    emu.admin("consent/grant", tenant="contoso", client="web", resource="downstream-api")
    web: msal.ConfidentialClientApplication = web_client(emu, monkeypatch)
    scopes = [downstream_scope(emu, "Records.ReadWrite")]
    result: dict[str, Any] = sign_in(emu, web, "alice@contoso.test", scopes)
    assert "access_token" in result, result
    direct = claims_of(result["access_token"])
    assert direct["aud"] == emu.app_id("downstream-api") and direct["azp"] == emu.app_id("web")
    assert direct["scp"] == "Records.ReadWrite"

    env = downstream_env(emu, tmp_path / "ds")
    service = start_service("downstream_api", "DOWNSTREAM", env, emulator=emu)
    with service.http() as http:
        r = http.get("/records", headers=bearer(result["access_token"]))
    service.stop()
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == (
        f'{REALM}, error="invalid_token", error_description="The calling application is not allowed."'
    )
