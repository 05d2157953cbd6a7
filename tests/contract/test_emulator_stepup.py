"""Conditional Access for an authentication context, as the emulator plays it, driven by unmodified MSAL.

A claims request for `acrs` c1 (MSAL's `claims_challenge`) makes the sign-in ask for a second factor (a
one-time code, read from the emulator's admin view); the token then names the context in `acrs`. Within
the sign-in frequency a refresh asking for c1 gets it silently; a session that never met c1 is answered
`interaction_required` with the claims to ask for. On-behalf-of carries a context the user's token has.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
from devtools.signin import FormBrowser, parse_forms

from tests.support.launch import LiveEmulator

from .helpers import api_scope, claims_of, confidential_client, downstream_scope, managed_identity_assertion, web_client

pytestmark = pytest.mark.guidance("secure-with-cae")

C1 = json.dumps({"access_token": {"acrs": {"essential": True, "value": "c1"}}})
CP1 = ["CP1"]
REDIRECT = "http://localhost:8000/auth/callback"


def _codes(emu: LiveEmulator) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = emu.administrator.get("/admin/one-time-codes")["codes"]
    return found


def _to_verify_page(emu: LiveEmulator, app: msal.ClientApplication, browser: FormBrowser) -> tuple[Any, Any]:
    flow = app.initiate_auth_code_flow([api_scope(emu, "Tasks.ReadWrite")], redirect_uri=REDIRECT, claims_challenge=C1)
    page = browser.sign_in(flow["auth_uri"], "alice@contoso.test", emu.password)
    forms, text = parse_forms(page.text)
    assert page.status_code == 200 and "Verify it's you" in text and forms[0].action.endswith("/verify"), text[:300]
    return flow, page


def _redeem(app: msal.ClientApplication, flow: dict[str, Any], answer: Any) -> dict[str, Any]:
    assert answer.status_code == 302, answer.text[:300]
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, query)
    return result


def test_a_claims_request_for_c1_asks_for_a_second_factor_then_the_token_names_it(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    app, browser = web_client(emu, monkeypatch, client_capabilities=CP1), FormBrowser()
    flow, page = _to_verify_page(emu, app, browser)
    [waiting] = _codes(emu)
    assert (waiting["upn"], waiting["context"]) == ("alice@contoso.test", "c1")

    wrong = browser.submit(page, {"code": "000000" if waiting["code"] != "000000" else "111111"})
    assert wrong.status_code == 400 and "not the one sent" in wrong.text
    result = _redeem(app, flow, browser.submit(wrong, {"code": waiting["code"]}))
    assert claims_of(result["access_token"])["acrs"] == ["c1"]
    assert _codes(emu) == []  # used up

    # Within the sign-in frequency a refresh asking for c1 gets it, no prompt.
    [account] = app.get_accounts()
    again = app.acquire_token_silent_with_error(
        [api_scope(emu, "Tasks.ReadWrite")], account, claims_challenge=C1, force_refresh=True
    )
    assert again and claims_of(again["access_token"])["acrs"] == ["c1"]
    # A token not asked for c1 doesn't name it.
    plain = app.acquire_token_silent_with_error([api_scope(emu, "Tasks.ReadWrite")], account, force_refresh=True)
    assert plain and "acrs" not in claims_of(plain["access_token"])


def test_five_wrong_codes_end_the_attempt(fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = fresh_emulator
    app, browser = web_client(emu, monkeypatch, client_capabilities=CP1), FormBrowser()
    _, page = _to_verify_page(emu, app, browser)
    [waiting] = _codes(emu)
    wrong = "000000" if waiting["code"] != "000000" else "111111"
    for _ in range(5):
        page = browser.submit(page, {"code": wrong})
        assert page.status_code == 400
    refused = browser.submit(page, {"code": waiting["code"]})  # right, but too late
    assert refused.status_code == 302
    query = parse_qs(urlsplit(refused.headers["location"]).query)
    assert query["error"] == ["access_denied"] and "AADSTS50076" in query["error_description"][0]


def test_a_refresh_asking_for_c1_in_a_session_that_never_met_it_needs_interaction(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    app, browser = web_client(emu, monkeypatch, client_capabilities=CP1), FormBrowser()
    flow = app.initiate_auth_code_flow([api_scope(emu, "Tasks.Read")], redirect_uri=REDIRECT)
    _redeem(app, flow, browser.sign_in(flow["auth_uri"], "alice@contoso.test", emu.password))
    [account] = app.get_accounts()
    refused = app.acquire_token_silent_with_error(
        [api_scope(emu, "Tasks.Read")], account, claims_challenge=C1, force_refresh=True
    )
    assert refused and refused["error"] == "interaction_required" and 50076 in refused["error_codes"]
    assert json.loads(refused["claims"]) == json.loads(C1)


def test_on_behalf_of_carries_a_context_the_users_token_has_and_no_other(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    app, browser = web_client(emu, monkeypatch, client_capabilities=CP1), FormBrowser()
    flow, page = _to_verify_page(emu, app, browser)
    stepped_up = _redeem(app, flow, browser.submit(page, {"code": _codes(emu)[0]["code"]}))
    [account] = app.get_accounts()
    plain = app.acquire_token_silent_with_error([api_scope(emu, "Tasks.ReadWrite")], account, force_refresh=True)
    assert plain and "acrs" not in claims_of(plain["access_token"])

    credential = {"client_assertion": managed_identity_assertion(emu, "api", monkeypatch)}
    api = confidential_client(emu, "api", credential, client_capabilities=CP1)
    scopes = [downstream_scope(emu, "Records.ReadWrite")]
    carried = api.acquire_token_on_behalf_of(stepped_up["access_token"], scopes, claims_challenge=C1)
    assert claims_of(carried["access_token"])["acrs"] == ["c1"]
    refused = api.acquire_token_on_behalf_of(plain["access_token"], scopes, claims_challenge=C1)
    assert refused["error"] == "interaction_required" and json.loads(refused["claims"]) == json.loads(C1)
