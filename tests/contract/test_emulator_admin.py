"""Admin actions in the emulator are observable by apps only through the protocol, as in Entra."""

from __future__ import annotations

import ssl

import jwt
import msal
import pytest
from devtools.signin import FormBrowser

from tests.support.launch import LiveEmulator

from .helpers import (
    api_scope,
    claims_of,
    confidential_client,
    downstream_scope,
    managed_identity_assertion,
    sign_in,
    web_client,
)


def _daemon_token(emu: LiveEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    # A new client each time: MSAL would otherwise serve the cached token signed by the old key.
    daemon = confidential_client(
        emu, "daemon", {"client_assertion": managed_identity_assertion(emu, "daemon", monkeypatch)}
    )
    result = daemon.acquire_token_for_client([f"api://{emu.app_id('api')}/.default"])
    token: str = result["access_token"]
    return token


def _verify(emu: LiveEmulator, token: str) -> dict[str, object]:
    jwks = jwt.PyJWKClient(
        f"{emu.base}/{emu.info['tenants']['contoso']}/discovery/v2.0/keys",
        cache_keys=False,
        cache_jwk_set=False,
        ssl_context=ssl.create_default_context(cafile=str(emu.tls.ca_bundle)),
    )
    key = jwks.get_signing_key_from_jwt(token)
    claims: dict[str, object] = jwt.decode(token, key, algorithms=["RS256"], audience=emu.app_id("api"))
    return claims


def test_key_rotation_publishes_old_and_new_then_withdraws_the_old(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    keys_url = f"{emu.base}/{emu.info['tenants']['contoso']}/discovery/v2.0/keys"
    with emu.http() as http:
        before = [k["kid"] for k in http.get(keys_url).json()["keys"]]
    old_token = _daemon_token(emu, monkeypatch)
    assert jwt.get_unverified_header(old_token)["kid"] == before[0]

    rotated = emu.admin("keys/rotate")
    with emu.http() as http:
        during = [k["kid"] for k in http.get(keys_url).json()["keys"]]
    assert set(during) == {before[0], rotated["kid"]}
    new_token = _daemon_token(emu, monkeypatch)
    assert jwt.get_unverified_header(new_token)["kid"] == rotated["kid"]
    assert _verify(emu, old_token)["roles"] == _verify(emu, new_token)["roles"] == ["Tasks.Report.All"]

    emu.admin("keys/withdraw-retired")
    with emu.http() as http:
        after = [k["kid"] for k in http.get(keys_url).json()["keys"]]
    assert after == [rotated["kid"]]
    with pytest.raises(jwt.PyJWKClientError):
        _verify(emu, old_token)
    assert _verify(emu, new_token)["azp"] == emu.app_id("daemon")


def test_revoked_sessions_refuse_refresh_and_obo_and_require_sign_in_again(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    web = web_client(emu, monkeypatch)
    browser = FormBrowser()
    scopes = [api_scope(emu, "Tasks.Read")]
    first = sign_in(emu, web, "alice@contoso.test", scopes, browser=browser)
    account = web.get_accounts()[0]

    emu.admin("users/revoke-sessions", upn="alice@contoso.test")

    refused = web.acquire_token_silent_with_error(scopes, account=account, force_refresh=True)
    assert refused is not None and refused["error"] == "invalid_grant"
    assert refused["error_codes"] == [50173]
    api = confidential_client(emu, "api", {"client_assertion": managed_identity_assertion(emu, "api", monkeypatch)})
    obo = api.acquire_token_on_behalf_of(first["access_token"], [downstream_scope(emu, "Records.Read")])
    assert obo.get("error_codes") == [50173]
    # The browser's sign-in session at the identity provider is gone too: the login form comes back.
    flow = web.initiate_auth_code_flow(scopes, redirect_uri="http://localhost:8000/auth/callback")
    page = browser.http.get(flow["auth_uri"])
    assert page.status_code == 200 and 'name="password"' in page.text
    # A fresh sign-in after the revocation works again.
    again = sign_in(emu, web, "alice@contoso.test", scopes, browser=browser)
    assert claims_of(again["access_token"])["oid"] == claims_of(first["access_token"])["oid"]


def test_tenant_wide_admin_consent_unlocks_an_admin_only_scope_and_revoking_removes_it(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    web = web_client(emu, monkeypatch)
    scopes = [api_scope(emu, "Tasks.Read.All")]
    flow = web.initiate_auth_code_flow(scopes, redirect_uri="http://localhost:8000/auth/callback")
    blocked = FormBrowser().sign_in(flow["auth_uri"], "alice@contoso.test", emu.password)
    assert blocked.status_code == 403 and "Need admin approval" in blocked.text

    emu.admin("consent/grant", tenant="contoso", client="web", resource="api")
    result = sign_in(emu, web, "alice@contoso.test", scopes)
    assert "Tasks.Read.All" in claims_of(result["access_token"])["scp"].split()

    emu.admin("consent/revoke", tenant="contoso", client="web", resource="api")
    refused = web.acquire_token_silent_with_error(scopes, account=web.get_accounts()[0], force_refresh=True)
    assert refused is not None and refused["error_codes"] == [90094]


def test_cli_device_code_is_refused_for_a_disabled_user(fresh_emulator: LiveEmulator) -> None:
    emu = fresh_emulator
    emu.admin("users/disable", upn="bob@contoso.test")
    cli = msal.PublicClientApplication(emu.info["cli_client_id"], authority=emu.authority(), instance_discovery=False)
    flow = cli.initiate_device_flow(scopes=[api_scope(emu, "Tasks.Read")])
    page = FormBrowser().approve_device(flow["verification_uri"], flow["user_code"], "bob@contoso.test", emu.password)
    assert page.status_code == 400 and "AADSTS50057" in page.text
    emu.admin("users/enable", upn="bob@contoso.test")
    done = FormBrowser().approve_device(flow["verification_uri"], flow["user_code"], "bob@contoso.test", emu.password)
    assert done.status_code == 200
    assert claims_of(cli.acquire_token_by_device_flow(flow)["access_token"])["preferred_username"] == "bob@contoso.test"
