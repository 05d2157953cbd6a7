"""Unmodified MSAL and azure-identity against the emulator, over real HTTPS, for every flow."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
from azure.identity import ManagedIdentityCredential
from devtools.signin import FormBrowser

from tests.support.launch import LiveEmulator

from .helpers import (
    api_scope,
    certificate_credential,
    claims_of,
    confidential_client,
    downstream_scope,
    managed_identity_assertion,
    sign_in,
    web_client,
)


def test_sign_in_with_auth_code_pkce_and_federated_managed_identity(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = web_client(live, monkeypatch)
    result = sign_in(live, app, "alice@contoso.test", [api_scope(live, "Tasks.Read")])
    assert "access_token" in result, result
    at = claims_of(result["access_token"])
    assert at["aud"] == live.app_id("api")
    assert at["scp"] == "Tasks.Read"
    assert at["azp"] == live.app_id("web")
    assert at["azpacr"] == "2"
    assert at["tid"] == live.info["tenants"]["contoso"]
    assert at["iss"] == f"{live.base}/{at['tid']}/v2.0"
    assert at["ver"] == "2.0"
    assert at["preferred_username"] == "alice@contoso.test"
    assert at["sub"] != at["oid"]
    assert result["id_token_claims"]["aud"] == live.app_id("web")


def test_first_sign_in_shows_consent_and_declining_returns_access_denied(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = web_client(live, monkeypatch)
    flow = app.initiate_auth_code_flow(
        [api_scope(live, "Tasks.ReadWrite")], redirect_uri="http://localhost:8000/auth/callback", prompt="consent"
    )
    browser = FormBrowser()
    login = browser.http.get(flow["auth_uri"])
    consent_page = browser.submit(login, {"username": "bob@contoso.test", "password": live.password})
    assert consent_page.status_code == 200
    assert "Permissions requested" in consent_page.text and "Tasks.ReadWrite" in consent_page.text
    declined = browser.submit(consent_page, {}, "decline")
    assert declined.status_code == 302
    query = parse_qs(urlsplit(declined.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["error_description"][0].startswith("AADSTS65004")
    assert query["state"] == [flow["state"]]


def test_silent_acquisition_is_served_from_msal_cache_then_refreshes(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = web_client(live, monkeypatch)
    scopes = [api_scope(live, "Tasks.Read")]
    first = sign_in(live, app, "alice@contoso.test", scopes)
    account = app.get_accounts(username="alice@contoso.test")[0]
    assert account["home_account_id"] == f"{claims_of(first['access_token'])['oid']}.{live.info['tenants']['contoso']}"

    cached = app.acquire_token_silent(scopes, account=account)
    assert cached is not None and cached["token_source"] == "cache"
    assert cached["access_token"] == first["access_token"]

    refreshed = app.acquire_token_silent(scopes, account=account, force_refresh=True)
    assert refreshed is not None and refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != first["access_token"]
    assert claims_of(refreshed["access_token"])["oid"] == claims_of(first["access_token"])["oid"]


def test_client_capability_cp1_puts_xms_cc_in_the_access_token(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = web_client(live, monkeypatch, client_capabilities=["cp1"])
    result = sign_in(live, app, "alice@contoso.test", [api_scope(live, "Tasks.Read")])
    assert claims_of(result["access_token"])["xms_cc"] == ["cp1"]
    plain = sign_in(live, web_client(live, monkeypatch), "alice@contoso.test", [api_scope(live, "Tasks.Read")])
    assert "xms_cc" not in claims_of(plain["access_token"])


def test_on_behalf_of_with_the_apis_managed_identity(live: LiveEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    user = sign_in(live, web_client(live, monkeypatch), "alice@contoso.test", [api_scope(live, "Tasks.Read")])
    api = confidential_client(live, "api", {"client_assertion": managed_identity_assertion(live, "api", monkeypatch)})
    result = api.acquire_token_on_behalf_of(user["access_token"], [downstream_scope(live, "Records.Read")])
    assert "access_token" in result, result
    obo = claims_of(result["access_token"])
    incoming = claims_of(user["access_token"])
    assert obo["aud"] == live.app_id("downstream-api")
    assert obo["azp"] == live.app_id("api")
    assert obo["scp"] == "Records.Read"  # only what was asked for, not everything pre-authorized
    assert (obo["oid"], obo["tid"]) == (incoming["oid"], incoming["tid"])
    assert obo["sub"] != incoming["sub"]  # pairwise per application
    assert "refresh_token" in result or api.get_accounts()  # MSAL caches the user for silent reuse
    again = api.acquire_token_silent([downstream_scope(live, "Records.Read")], account=api.get_accounts()[0])
    assert again is not None and again["token_source"] == "cache"


def test_client_credentials_for_the_daemon_with_its_managed_identity(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = confidential_client(
        live, "daemon", {"client_assertion": managed_identity_assertion(live, "daemon", monkeypatch)}
    )
    result = daemon.acquire_token_for_client([f"api://{live.app_id('api')}/.default"])
    assert "access_token" in result, result
    at = claims_of(result["access_token"])
    assert at["idtyp"] == "app"
    assert at["roles"] == ["Tasks.Report.All"]
    assert at["azp"] == live.app_id("daemon")
    assert "scp" not in at and at["oid"] == at["sub"]
    assert daemon.acquire_token_for_client([f"api://{live.app_id('api')}/.default"])["token_source"] == "cache"


def test_client_credentials_with_a_certificate_as_fallback(live: LiveEmulator, tmp_path: Path) -> None:
    credential = certificate_credential(live, "daemon", tmp_path)
    daemon = confidential_client(live, "daemon", credential)
    result = daemon.acquire_token_for_client([f"api://{live.app_id('api')}/.default"])
    assert "access_token" in result, result
    assert claims_of(result["access_token"])["roles"] == ["Tasks.Report.All"]


def test_device_code_flow_for_the_cli(live: LiveEmulator) -> None:
    cli = msal.PublicClientApplication(live.info["cli_client_id"], authority=live.authority(), instance_discovery=False)
    flow = cli.initiate_device_flow(scopes=[api_scope(live, "Tasks.Read")])
    assert flow["user_code"] in flow["message"]
    done = FormBrowser().approve_device(
        flow["verification_uri"], flow["user_code"], "alice@contoso.test", live.password
    )
    assert done.status_code == 200 and "signed in" in done.text
    result = cli.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    at = claims_of(result["access_token"])
    assert at["azp"] == live.info["cli_client_id"] and at["azpacr"] == "0"
    assert at["preferred_username"] == "alice@contoso.test"


def test_managed_identity_database_tokens_are_distinct_per_service(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = {}
    for service in ("web", "api", "downstream-api"):
        for k, v in live.managed_identity_env(service).items():
            monkeypatch.setenv(k, v)
        token = ManagedIdentityCredential().get_token("https://ossrdbms-aad.database.windows.net/.default")
        claims = claims_of(token.token)
        assert claims["aud"] == "https://ossrdbms-aad.database.windows.net"
        assert token.expires_on > time.time() + 300
        seen[service] = claims["oid"]
    assert len(set(seen.values())) == 3


def test_group_claims_and_overage(live: LiveEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    app = web_client(live, monkeypatch)
    alice = claims_of(sign_in(live, app, "alice@contoso.test", [api_scope(live, "Tasks.Read")])["access_token"])
    assert len(alice["groups"]) == 2 and "_claim_names" not in alice
    dave = claims_of(sign_in(live, app, "dave@contoso.test", [api_scope(live, "Tasks.Read")])["access_token"])
    assert "groups" not in dave
    assert dave["_claim_names"] == {"groups": "src1"}
    assert dave["_claim_sources"]["src1"]["endpoint"].startswith("https://graph.microsoft.com/")


def test_app_role_for_a_user_appears_in_roles(live: LiveEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    app = web_client(live, monkeypatch)
    bob = claims_of(sign_in(live, app, "bob@contoso.test", [api_scope(live, "Tasks.Read")])["access_token"])
    assert bob["roles"] == ["Tasks.Admin", "User"]
    # Every assigned person holds the api's baseline role (the api requires assignment); nothing more.
    alice = claims_of(sign_in(live, app, "alice@contoso.test", [api_scope(live, "Tasks.Read")])["access_token"])
    assert alice["roles"] == ["User"]


def test_multi_tenant_endpoint_organizations_issues_tokens_from_the_users_home_tenant(live: LiveEmulator) -> None:
    cli = msal.PublicClientApplication(
        live.info["cli_client_id"], authority=f"{live.base}/organizations", instance_discovery=False
    )
    flow = cli.initiate_device_flow(scopes=[api_scope(live, "Tasks.Read")])
    FormBrowser().approve_device(flow["verification_uri"], flow["user_code"], "alice@contoso.test", live.password)
    result = cli.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    at = claims_of(result["access_token"])
    assert at["iss"] == f"{live.base}/{live.info['tenants']['contoso']}/v2.0"
    with live.http() as http:
        doc = http.get(f"{live.base}/organizations/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{live.base}/{{tenantid}}/v2.0"
