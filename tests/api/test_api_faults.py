"""The api when what it depends on fails: clean answers with a correlation id, never a 500.

downstream-api unreachable -> 503 with Retry-After; the user's grant revoked at the identity
provider (on-behalf-of refused) -> 401 invalid_token, so the client signs the user in again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from devtools.ports import free_port

from tests.contract.helpers import api_scope, sign_in, web_client
from tests.support.launch import LiveEmulator, LiveService

pytestmark = [pytest.mark.live, pytest.mark.guidance("api-calls-api")]


def _api(live: LiveEmulator, start_service: Callable[..., LiveService], downstream_url: str) -> LiveService:
    env = {
        **live.managed_identity_env("api"),
        "API_AUTHORITY": live.authority(),
        "API_DOWNSTREAM_URL": downstream_url,
    }
    return start_service("api", "API", env, emulator=live)


def test_downstream_unreachable_is_a_503_with_a_correlation_id(
    live: LiveEmulator, start_service: Callable[..., LiveService], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _api(live, start_service, f"https://localhost:{free_port()}")  # nothing listens there
    token = sign_in(live, web_client(live, monkeypatch), "alice@contoso.test", [api_scope(live, "Tasks.Read")])
    with api.http() as http:
        r = http.get("/tasks", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    body = r.json()
    assert body["error"] == "temporarily_unavailable" and body["correlation_id"] == r.headers["x-correlation-id"]


def test_a_revoked_grant_makes_the_api_ask_for_a_new_sign_in(
    fresh_emulator: LiveEmulator, start_service: Callable[..., LiveService], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    api = _api(emu, start_service, f"https://localhost:{free_port()}")
    token = sign_in(emu, web_client(emu, monkeypatch), "alice@contoso.test", [api_scope(emu, "Tasks.Read")])
    emu.admin("users/revoke-sessions", upn="alice@contoso.test")
    with api.http() as http:
        r = http.get("/tasks", headers={"Authorization": f"Bearer {token['access_token']}"})
    # The access token itself is still valid (no CAE yet); the on-behalf-of exchange is what fails.
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Bearer realm="api", error="invalid_token"')
    assert r.json()["correlation_id"] == r.headers["x-correlation-id"]


def test_downstream_refusing_the_apis_own_token_is_a_502_not_the_callers_fault(
    live: LiveEmulator, start_service: Callable[..., LiveService], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A downstream-api that trusts some other caller: the api's on-behalf-of token is refused there.
    downstream = start_service(
        "downstream_api",
        "DOWNSTREAM",
        {
            "DOWNSTREAM_AUTHORITY": live.authority(),
            "DOWNSTREAM_ALLOWED_CLIENT_IDS": '["00000000-0000-0000-0000-000000000001"]',
            "DOWNSTREAM_STATE_DIR": str(tmp_path / "downstream"),
        },
        emulator=live,
    )
    api = _api(live, start_service, downstream.base)
    token = sign_in(live, web_client(live, monkeypatch), "alice@contoso.test", [api_scope(live, "Tasks.Read")])
    with api.http() as http:
        r = http.get("/tasks", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 502
    assert r.json()["error"] == "bad_gateway"
    assert "www-authenticate" not in r.headers  # the caller's token was fine; nothing for them to fix
