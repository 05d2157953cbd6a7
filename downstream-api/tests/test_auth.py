"""Token validation and permissions at downstream-api, over HTTP (in process), RFC 6750 answers."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from downstream_api.settings import API_APP_ID, API_APP_ONLY_APP_ID
from fastapi.testclient import TestClient
from zerotrust.settings import HOME_TENANT_ID

ALICE = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"
WEB_APP_ID = "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"
OTHER_TENANT_ID = "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
REALM = 'Bearer realm="downstream-api"'
Headers = Callable[..., dict[str, str]]


def invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'{REALM}, error="invalid_token", error_description="')
    assert response.json()["error"] == "invalid_token"
    assert response.headers["cache-control"] == "no-store"


def test_healthz_is_public_and_says_nothing(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert "server" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


@pytest.mark.parametrize("path", ["/me", "/records", "/records/00000000-0000-4000-8000-000000000000"])
def test_no_token_is_401_with_a_bare_challenge(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == REALM


def test_another_scheme_is_no_credentials(client: TestClient) -> None:
    r = client.get("/me", headers={"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="})
    assert r.status_code == 401 and r.headers["www-authenticate"] == REALM


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer  ", "Bearer a b"])
def test_a_malformed_bearer_header_is_400_invalid_request(client: TestClient, authorization: str) -> None:
    r = client.get("/me", headers={"Authorization": authorization})
    assert r.status_code == 400
    assert r.headers["www-authenticate"].startswith(f'{REALM}, error="invalid_request"')


def test_me_shows_the_caller_as_this_tier_validated_it(client: TestClient, as_user: Headers) -> None:
    r = client.get("/me", headers=as_user(xms_cc=["cp1"]))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["tenant_id"] == HOME_TENANT_ID and me["object_id"] == ALICE
    assert me["calling_app"] == API_APP_ID
    assert me["scopes"] == ["Records.ReadWrite"]
    assert me["app_only"] is False
    assert me["client_capabilities"] == ["cp1"]
    assert "access_token" not in json.dumps(me)
    assert r.headers["cache-control"] == "no-store"


def test_read_scope_is_enough_for_me_and_lists(client: TestClient, as_user: Headers) -> None:
    headers = as_user(scp="Records.Read")
    assert client.get("/me", headers=headers).status_code == 200
    assert client.get("/records", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": API_APP_ID},  # audience of the other API: audience confusion
        {"aud": WEB_APP_ID},
        {"aud": "00000003-0000-0000-c000-000000000000"},  # Microsoft Graph
        {"azp": WEB_APP_ID},  # the web app calling directly, not through the api
        {"azp": "e4b1c6d2-7f3a-4b8e-9d1c-2a6f5e8b3c47"},  # the daemon
        {"tid": OTHER_TENANT_ID, "iss": f"https://login.example.test/{OTHER_TENANT_ID}/v2.0"},
        {"iss": "https://evil.example.test/9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d/v2.0"},
        {"iss": f"https://login.example.test/{OTHER_TENANT_ID}/v2.0"},  # issuer and tid disagree
        {"ver": "1.0"},
        {"exp": int(time.time()) - 3600},
        {"nbf": int(time.time()) + 3600},
        *({name: None} for name in ("exp", "iat", "nbf", "iss", "aud", "tid", "oid", "sub", "azp", "ver")),
    ],
)
def test_bad_tokens_are_401_invalid_token(client: TestClient, as_user: Headers, claims: dict[str, Any]) -> None:
    invalid_token(client.get("/me", headers=as_user(**claims)))


def test_forged_signature_with_the_right_kid_is_refused(client: TestClient, as_user: Headers) -> None:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    invalid_token(client.get("/me", headers=as_user(key=attacker)))


def test_alg_none_hs256_and_garbage_are_refused(client: TestClient, mint: Callable[..., str]) -> None:
    good = mint()
    header, payload, _ = good.split(".")

    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    for token in (
        f"{b64({'alg': 'none', 'kid': 'test-key-1'})}.{payload}.",
        f"{b64({'alg': 'NoNe', 'kid': 'test-key-1'})}.{payload}.",
        mint(key="a-shared-secret-that-is-long-enough-for-hs256", algorithm="HS256"),
        f"{header}.{payload}.{'A' * 20}",  # truncated signature
        f"{header}.{payload}",
        "not-a-jwt",
        "a.b.c",
        "x" * 20000,
    ):
        invalid_token(client.get("/me", headers={"Authorization": f"Bearer {token}"}))


def test_header_supplied_keys_are_not_used(client: TestClient, as_user: Headers) -> None:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import jwt

    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    headers = as_user(key=attacker, headers={"jwk": jwk, "jku": "https://evil.example.test/keys"})
    invalid_token(client.get("/me", headers=headers))


def test_unknown_kid_refreshes_the_key_set_once_then_401(
    client: TestClient, mint: Callable[..., str], provider: Any
) -> None:
    assert client.get("/me", headers={"Authorization": f"Bearer {mint()}"}).status_code == 200
    fetched = len(provider.requests)
    for _ in range(3):
        unknown_kid = mint(headers={"kid": "other"})
        invalid_token(client.get("/me", headers={"Authorization": f"Bearer {unknown_kid}"}))
    assert len(provider.requests) - fetched <= 1  # one key-set refresh at most, rate-limited


@pytest.mark.parametrize(
    ("claims", "needed"),
    [
        ({"scp": "Records.Read"}, "Records.ReadWrite"),
        ({"scp": "Tasks.ReadWrite"}, "Records.ReadWrite"),
    ],
)
def test_write_without_the_write_scope_is_403_insufficient_scope(
    client: TestClient, as_user: Headers, claims: dict[str, Any], needed: str
) -> None:
    r = client.post("/records", headers=as_user(**claims), json={"title": "x"})
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == (
        f'{REALM}, error="insufficient_scope", error_description='
        f'"The token does not grant this operation.", scope="{needed}"'
    )


def test_reading_without_a_records_scope_is_403_naming_both(client: TestClient, as_user: Headers) -> None:
    r = client.get("/me", headers=as_user(scp="Tasks.Read"))
    assert r.status_code == 403
    assert r.headers["www-authenticate"].endswith('scope="Records.Read Records.ReadWrite"')


def test_app_only_tokens_have_no_route_here(client: TestClient, as_user: Headers) -> None:
    # Even with the app role the manifest defines, and a scope claim smuggled in beside idtyp=app, from the
    # client app-only tokens are taken from (the api's app-only registration).
    for claims in (
        {"scp": None, "idtyp": "app", "roles": ["Records.Report.All"]},
        {"idtyp": "app", "roles": ["Records.Report.All"]},
    ):
        claims["azp"] = API_APP_ONLY_APP_ID
        r = client.get("/records", headers=as_user(**claims))
        assert r.status_code == 403, claims


def test_anonymous_bodies_are_not_read_401_comes_first(client: TestClient) -> None:
    r = client.post("/records", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == REALM
    r = client.post("/records", content=b"x" * 1_000_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 401


def test_provider_unreachable_and_no_keys_cached_is_503_not_500(
    client: TestClient, as_user: Headers, provider: Any
) -> None:
    provider.up = False
    r = client.get("/me", headers=as_user())
    assert r.status_code == 503
    assert r.json()["error"] == "temporarily_unavailable"
    assert r.headers["retry-after"] == "5"
    assert r.headers["x-correlation-id"]


def test_provider_down_after_keys_are_cached_keeps_validating(
    client: TestClient, as_user: Headers, provider: Any
) -> None:
    assert client.get("/me", headers=as_user()).status_code == 200
    provider.up = False
    assert client.get("/me", headers=as_user()).status_code == 200


def test_provider_outage_stays_503_and_recovers_without_restart(
    make_client: Callable[..., TestClient], as_user: Headers, provider: Any
) -> None:
    # With no keys cached the key set retries at most every key_set_refresh_seconds: a setting, so no waiting.
    client = make_client(key_set_refresh_seconds=1e-9)
    provider.up = False
    assert client.get("/me", headers=as_user()).status_code == 503
    assert client.get("/me", headers=as_user()).status_code == 503
    provider.up = True
    assert client.get("/me", headers=as_user()).status_code == 200
