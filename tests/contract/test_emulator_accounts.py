"""Switching account and a B2B guest, as Entra does them.

prompt=select_account shows the account signed in in this browser and "Use another account" (MSAL's
`prompt` on the auth code flow); a refusal page offers the same picker for the refused sign-in, which then
ends as someone else with the app's own state, nonce and PKCE. prompt=login always asks for a sign-in.
gwen@fabrikam.test, a guest in contoso, gets contoso's tid and issuer, acct 1 and fabrikam as `idp`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from devtools.signin import FormBrowser, parse_forms

from tests.support.launch import LiveEmulator

from .helpers import api_scope, claims_of, sign_in, web_client

pytestmark = [pytest.mark.live, pytest.mark.guidance("user-authentication")]

CONTOSO = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
FABRIKAM = "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
REDIRECT = "http://localhost:8000/auth/callback"


def _answer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text[:500]
    assert response.headers["location"].startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def _pick(browser: FormBrowser, picker: httpx.Response, account: str) -> httpx.Response:
    forms, _ = parse_forms(picker.text)
    assert ("account", "signed-in") in forms[0].buttons and ("account", "another") in forms[0].buttons
    data = {**forms[0].fields, "account": account}
    return browser.http.post(urljoin(str(picker.url), forms[0].action), data=data)


def test_a_refused_sign_in_resumes_with_another_account(live: LiveEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    app = web_client(live, monkeypatch)
    flow = app.initiate_auth_code_flow([api_scope(live, "Tasks.Read")], redirect_uri=REDIRECT)
    browser = FormBrowser()
    refused = browser.sign_in(flow["auth_uri"], "carol@fabrikam.test", live.password)
    assert refused.status_code == 400 and "AADSTS50020" in refused.text
    assert "Sign in with another account" in refused.text
    # Without it, the app's next sign-in meets the same refusal: the emulator's session is carol's.
    again = browser.http.get(flow["auth_uri"])
    assert again.status_code == 400 and "AADSTS50020" in again.text
    [link] = re.findall(r'href="([^"]*/select-account\?txn=[^"]*)"', refused.text)
    picker = browser.http.get(urljoin(str(refused.url), link))
    assert picker.status_code == 200 and "carol@fabrikam.test" in picker.text and "Use another account" in picker.text
    login = _pick(browser, picker, "another")
    assert login.status_code == 200 and 'name="password"' in login.text
    done = browser.submit(login, {"username": "alice@contoso.test", "password": live.password})
    if done.status_code == 200 and "/consent" in done.text:
        done = browser.submit(done, {}, "accept")
    answer = _answer(done)
    assert answer["state"] == flow["state"]  # the app's own sign-in, finished as alice
    result = app.acquire_token_by_auth_code_flow(flow, answer)
    assert result["id_token_claims"]["preferred_username"] == "alice@contoso.test", result


def test_prompt_select_account_lists_the_signed_in_account_and_prompt_login_asks_again(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = web_client(live, monkeypatch)
    scopes = [api_scope(live, "Tasks.Read")]
    browser = FormBrowser()
    assert "access_token" in sign_in(live, app, "alice@contoso.test", scopes, browser=browser)
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT, prompt="select_account")
    picker = browser.http.get(flow["auth_uri"])
    assert picker.status_code == 200 and "alice@contoso.test" in picker.text
    result = app.acquire_token_by_auth_code_flow(flow, _answer(_pick(browser, picker, "signed-in")))
    assert result["id_token_claims"]["preferred_username"] == "alice@contoso.test", result
    # prompt=login: a sign-in page, whoever is signed in.
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT, prompt="login")
    login = browser.http.get(flow["auth_uri"])
    assert login.status_code == 200 and 'name="password"' in login.text
    # A picker for a sign-in that does not exist is an error page, not a 500.
    missing = browser.http.get(urljoin(str(login.url), f"/{CONTOSO}/select-account?txn=nope"))
    assert missing.status_code == 400 and "AADSTS50089" in missing.text


def test_a_guest_gets_the_resource_tenants_tokens_with_acct_1_and_her_home_idp(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = web_client(live, monkeypatch)
    result = sign_in(live, app, "gwen@fabrikam.test", [api_scope(live, "Tasks.Read")])
    assert "access_token" in result, result
    for claims in (claims_of(result["access_token"]), result["id_token_claims"]):
        assert claims["tid"] == CONTOSO and claims["iss"].endswith(f"/{CONTOSO}/v2.0")
        assert claims["idp"] == f"https://sts.windows.net/{FABRIKAM}/"
    assert claims_of(result["access_token"])["acct"] == 1
    member = sign_in(live, app, "bob@contoso.test", [api_scope(live, "Tasks.Read")])
    assert claims_of(member["access_token"])["acct"] == 0 and "idp" not in claims_of(member["access_token"])
