"""Admin consent at the emulator, as unmodified MSAL sees it: before, after, and after revocation.

What revocation does, honestly: the next token request for the scope is refused (a refresh, or a
new sign-in), as when an administrator deletes the grant in Entra ID. An access token issued
before stays valid until it expires; no resource can tell it was revoked (short of continuous
access evaluation), which is why the web app asks the token service again on each visit of the
organization page rather than reusing a cached token.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from devtools.signin import FormBrowser

from tests.contract.helpers import (
    api_scope,
    confidential_client,
    downstream_scope,
    managed_identity_assertion,
    sign_in,
    web_client,
)
from tests.support.launch import LiveEmulator

pytestmark = [pytest.mark.live, pytest.mark.guidance("permissions-require-admin-consent")]

TARGET = {"tenant": "contoso", "client": "web", "resource": "api"}


def _admin(emulator: LiveEmulator, action: str) -> None:
    r = emulator.administrator.request("POST", f"/admin/consent/{action}", data=TARGET)
    assert r.status_code == 200, r.text


def _token_requests(emulator: LiveEmulator) -> int:
    return emulator.stats()["token_requests"]


def _verified(emulator: LiveEmulator, token: str, audience: str) -> dict[str, object]:
    keys = jwt.PyJWKClient(f"{emulator.info['emulator']}/{emulator.info['tenants']['contoso']}/discovery/v2.0/keys")
    claims: dict[str, object] = jwt.decode(
        token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience=audience
    )
    return claims


def test_admin_only_scope_before_and_after_tenant_wide_consent_and_after_revocation(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    web = web_client(emu, monkeypatch)
    signed_in = sign_in(emu, web, "alice@contoso.test", [api_scope(emu, "Tasks.Read")])
    assert "access_token" in signed_in, signed_in
    account = web.get_accounts()[0]
    org = [api_scope(emu, "Tasks.Read.All")]

    # Before: no user can consent to it; the token service says an administrator must (AADSTS90094).
    before = web.acquire_token_silent_with_error(org, account)
    assert before is not None and before["error"] == "invalid_grant" and 90094 in before["error_codes"]

    _admin(emu, "grant")
    # The same refused request, made again within a minute, is answered by MSAL's own throttling
    # cache without reaching the token service ("UI required" cache): a retry must be interactive.
    requests = _token_requests(emu)
    throttled = web.acquire_token_silent_with_error(org, account)
    assert throttled is not None and 90094 in throttled["error_codes"] and _token_requests(emu) == requests
    # Interactive: the identity provider issues it at once, with no consent page (the admin's covers it).
    flow = web.initiate_auth_code_flow(org, redirect_uri="http://localhost:8000/auth/callback")
    back = FormBrowser().sign_in(flow["auth_uri"], "alice@contoso.test", emu.password, consent=False)
    assert back.status_code == 302, back.text[:300]
    answer = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}
    after = web.acquire_token_by_auth_code_flow(flow, answer)
    assert "access_token" in after, after
    assert after["scope"] == org[0]  # MSAL passes on what the token service granted
    issued = after["access_token"]

    _admin(emu, "revoke")
    again = web.acquire_token_silent_with_error(org, account, force_refresh=True)
    assert again is not None and again["error"] == "invalid_grant" and 90094 in again["error_codes"]
    # A token issued before the revocation: still validly signed and unexpired, until its exp.
    claims = _verified(emu, issued, emu.app_id("api"))
    assert claims["scp"] == "Tasks.Read.All" and int(str(claims["exp"])) > time.time()
    # Without force_refresh, MSAL would hand out that cached token: the reason the web app forces it.
    cached = web.acquire_token_silent_with_error(org, account)
    assert cached is not None and cached.get("access_token") == issued


def test_user_consent_never_carries_an_admin_only_scope_downstream_admin_consent_does(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    web = web_client(emu, monkeypatch)
    # alice consents to the web app for the api (combined consent carries the api's own needs along).
    signed_in = sign_in(emu, web, "alice@contoso.test", [api_scope(emu, "Tasks.Read")])
    api = confidential_client(emu, "api", {"client_assertion": managed_identity_assertion(emu, "api", monkeypatch)})
    records_all = [downstream_scope(emu, "Records.Read.All")]
    refused = api.acquire_token_on_behalf_of(signed_in["access_token"], records_all)
    assert refused["error"] == "invalid_grant" and 90094 in refused["error_codes"], refused
    assert "access_token" in api.acquire_token_on_behalf_of(
        signed_in["access_token"], [downstream_scope(emu, "Records.Read")]
    )

    _admin(emu, "grant")  # web on api, tenant-wide: the api on downstream-api comes with it
    org = web.acquire_token_silent_with_error([api_scope(emu, "Tasks.Read.All")], web.get_accounts()[0])
    assert org is not None and "access_token" in org, org
    granted = api.acquire_token_on_behalf_of(org["access_token"], records_all)
    assert "access_token" in granted, granted
    assert _verified(emu, granted["access_token"], emu.app_id("downstream-api"))["scp"] == "Records.Read.All"


# -- the admin consent endpoint -------------------------------------------------------------------


def _adminconsent_url(emu: LiveEmulator, scope: str, tenant: str = "organizations") -> str:
    query = {
        "client_id": emu.app_id("web"),
        "scope": scope,
        "redirect_uri": "http://localhost:8000/auth/admin-consent",
        "state": "st-42",
    }
    return f"{emu.front}/{tenant}/v2.0/adminconsent?{urlencode(query)}"


def _decide(emu: LiveEmulator, url: str, decision: str) -> dict[str, list[str]]:
    """The administrator signs in at `url`, answers the consent page; what the app receives."""
    browser = FormBrowser()
    page = browser.sign_in(url, "admin@contoso.test", emu.password)
    assert page.status_code == 200 and "Accept for your organization" in page.text, page.text[:500]
    back = browser.submit(page, {}, decision)
    assert back.status_code == 302, back.text[:300]
    location = back.headers["location"]
    assert location.startswith("http://localhost:8000/auth/admin-consent?"), location
    return parse_qs(urlsplit(location).query)


def test_the_admin_consent_endpoint_grants_for_the_whole_tenant_and_answers_as_entra_does(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    org = [api_scope(emu, "Tasks.Read.All")]
    answer = _decide(emu, _adminconsent_url(emu, org[0]), "accept")
    assert answer == {
        "admin_consent": ["True"],
        "tenant": [emu.info["tenants"]["contoso"]],
        "scope": org,
        "state": ["st-42"],
    }
    # Granted for everyone in the tenant: alice gets it with no prompt at all.
    web = web_client(emu, monkeypatch)
    flow = web.initiate_auth_code_flow(org, redirect_uri="http://localhost:8000/auth/callback")
    back = FormBrowser().sign_in(flow["auth_uri"], "alice@contoso.test", emu.password, consent=False)
    assert back.status_code == 302, back.text[:300]
    result = web.acquire_token_by_auth_code_flow(
        flow, {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}
    )
    assert result.get("scope") == org[0], result
    # And, combined consent, the api's admin-only need downstream with it (known client application).
    listed = emu.administrator.request("GET", "/admin").text
    assert "Records.Read.All" in listed and "Tasks.Read.All" in listed


def test_cancel_at_the_admin_consent_endpoint_answers_consent_required_and_grants_nothing(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    org = api_scope(emu, "Tasks.Read.All")
    answer = _decide(emu, _adminconsent_url(emu, org, tenant=emu.info["tenants"]["contoso"]), "decline")
    assert answer["error"] == ["consent_required"] and answer["error_description"][0].startswith("AADSTS65004:")
    assert answer["admin_consent"] == ["True"] and answer["state"] == ["st-42"] and "scope" not in answer
    assert answer["tenant"] == [emu.info["tenants"]["contoso"]]
    web = web_client(emu, monkeypatch)
    signed_in = sign_in(emu, web, "alice@contoso.test", [api_scope(emu, "Tasks.Read")])
    assert "access_token" in signed_in, signed_in
    refused = web.acquire_token_silent_with_error([org], web.get_accounts()[0])
    assert refused is not None and 90094 in refused["error_codes"]


def test_a_scope_the_resource_does_not_define_goes_back_to_the_app_as_an_error(fresh_emulator: LiveEmulator) -> None:
    emu = fresh_emulator
    r = httpx.get(_adminconsent_url(emu, api_scope(emu, "Tasks.Everything")), timeout=10, follow_redirects=False)
    assert r.status_code == 302
    answer = parse_qs(urlsplit(r.headers["location"]).query)
    assert answer["error"] == ["invalid_scope"] and answer["state"] == ["st-42"]
    assert answer["error_description"][0].startswith("AADSTS650053:")
