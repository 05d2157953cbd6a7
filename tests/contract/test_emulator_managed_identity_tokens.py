"""The emulator's managed-identity tokens: their lifetime is a setting (tests make database tokens
short-lived), and an identity added to the manifest later still gets its identity header."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

from tests.support.launch import LiveEmulator, start_emulator

pytestmark = pytest.mark.live

OSSRDBMS = "https://ossrdbms-aad.database.windows.net"


def msi_token(emulator: LiveEmulator, identity: str, resource: str = OSSRDBMS) -> dict[str, str]:
    with emulator.http() as http:
        r = http.get(
            f"{emulator.base}/msi/token",
            params={"api-version": "2019-08-01", "resource": f"{resource}/.default"},
            headers={"X-IDENTITY-HEADER": emulator.identity_header(identity)},
        )
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


@pytest.mark.guidance("identity-non-user-applications")
def test_managed_identity_token_lifetime_is_a_setting(emulator_factory: Callable[..., LiveEmulator]) -> None:
    emulator = emulator_factory(managed_identity_token_lifetime="120")
    body = msi_token(emulator, "database-admin")
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120 and int(body["expires_on"]) == claims["exp"]
    assert claims["aud"] == OSSRDBMS and claims["oid"] == "3b9e2d71-6c4f-4a85-b1d0-9e7f3a2c5d14"


@pytest.mark.guidance("identity-non-user-applications")
def test_the_web_identity_gets_tokens_for_azure_cache_for_redis(live: LiveEmulator) -> None:
    # The shared session store's password: a token of the web's managed identity for https://redis.azure.com.
    body = msi_token(live, "web", "https://redis.azure.com")
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://redis.azure.com" and claims["oid"] == "2e2df95e-22f0-462f-87d4-67941fc6141b"
    assert claims["iss"] == f"{live.authority()}/v2.0"


def test_an_identity_added_later_gets_a_header_and_the_others_keep_theirs(tmp_path: Path, live: LiveEmulator) -> None:
    local = tmp_path / "local"
    (local / "emulator").mkdir(parents=True, mode=0o700)
    (local / "tls").symlink_to(live.local_dir / "tls")
    # State from before database-admin was in the manifest.
    (local / "emulator" / "managed-identity-headers.json").write_text(json.dumps({"web": "old-web-header"}))
    emulator = start_emulator(local)
    try:
        headers = json.loads((local / "emulator" / "managed-identity-headers.json").read_text())
        assert headers["web"] == "old-web-header"
        assert {"api", "downstream-api", "database-admin"} <= set(headers)
        assert msi_token(emulator, "database-admin")["client_id"] == "8d3f5c2e-1b7a-4e09-9c64-2f0a7d51b3e8"
    finally:
        emulator.stop()
