"""Sign-in and sign-out (guidance: user-authentication), in-process against a fake identity provider."""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_login_redirects_to_authorize_with_pkce_state_nonce_and_form_post(browser: Any) -> None:
    auth_uri = browser.start_sign_in("/tasks")
    assert auth_uri.startswith("https://login.example.test/9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d/oauth2/v2.0/authorize?")
    q = _query(auth_uri)
    assert q["client_id"] == browser.settings.client_id
    assert q["redirect_uri"] == "http://localhost:8000/auth/callback"
    assert q["response_type"] == "code"
    assert q["response_mode"] == "form_post"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 16 and len(q["nonce"]) >= 16
    assert set(browser.settings.api_scopes) <= set(q["scope"].split())
    assert "code_verifier" not in auth_uri
    # The pending sign-in is bound to this browser by its own cookie, which must survive the
    # identity provider's cross-site form post (SameSite=None), and nothing else.
    attrs = browser.cookie_attributes(browser.responses[-1], "__Host-signin")
    assert attrs["secure"] and attrs["httponly"] and attrs["samesite"].lower() == "none"
    assert attrs["path"] == "/" and "domain" not in attrs
    assert "__Host-session" not in browser.responses[-1].headers.get("set-cookie", "")


def test_sign_in_sets_a_host_only_secure_httponly_lax_session_cookie(browser: Any) -> None:
    r = browser.sign_in("alice", "/tasks")
    assert r.status_code == 303 and r.headers["location"] == "/tasks"
    attrs = browser.cookie_attributes(r, "__Host-session")
    assert attrs["secure"] and attrs["httponly"] and attrs["samesite"].lower() == "lax"
    assert attrs["path"] == "/" and "domain" not in attrs
    assert len(attrs["value"]) >= 40
    # The sign-in cookie is done with.
    assert browser.cookie_attributes(r, "__Host-signin")["max-age"] == "0"
    home = browser.get("/")
    assert "Alice Adams" in home.text and "alice@contoso.test" in home.text


def test_session_id_is_rotated_at_every_sign_in(browser: Any) -> None:
    browser.sign_in("alice")
    first = browser.session_id
    assert browser.get("/tasks").status_code == 200
    browser.sign_in("alice")
    second = browser.session_id
    assert first and second and first != second
    # The old id is dead server-side, not only replaced in this browser's jar.
    assert browser.get_as(first, "/tasks").status_code == 302
    assert browser.get_as(second, "/tasks").status_code == 200


def test_a_planted_session_id_never_becomes_the_signed_in_session(browser: Any) -> None:
    auth_uri = browser.start_sign_in()
    code, state = browser.issue_code(auth_uri)
    r = browser.http.post(
        "/auth/callback",
        data={"code": code, "state": state},
        follow_redirects=False,
        headers={"Cookie": f"__Host-session=attacker-chosen-id; __Host-signin={browser.http.cookies['__Host-signin']}"},
    )
    assert r.status_code == 303
    assert browser.cookie_attributes(r, "__Host-session")["value"] != "attacker-chosen-id"
    assert browser.get_as("attacker-chosen-id", "/tasks").status_code == 302


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/chain", "/chain"),
        ("/tasks?x=1", "/tasks?x=1"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_after_sign_in_only_same_origin_paths(browser: Any, target: str, expected: str) -> None:
    r = browser.sign_in("alice", target)
    assert r.status_code == 303 and r.headers["location"] == expected


def test_replayed_callback_is_refused_with_a_clear_page(browser: Any) -> None:
    auth_uri = browser.start_sign_in()
    code, state = browser.issue_code(auth_uri)
    assert browser.post("/auth/callback", data={"code": code, "state": state}).status_code == 303
    again = browser.post("/auth/callback", data={"code": code, "state": state})
    assert again.status_code == 400
    assert "expired or was already used" in again.text and 'href="/auth/login"' in again.text


def test_a_kept_copy_of_the_sign_in_cookie_replayed_gets_nothing(browser: Any) -> None:
    auth_uri = browser.start_sign_in()
    kept = browser.http.cookies["__Host-signin"]
    code, state = browser.issue_code(auth_uri)
    assert browser.post("/auth/callback", data={"code": code, "state": state}).status_code == 303
    signed_in = browser.session_id
    # An attacker with a copy of the cookie and the answer: the identity provider redeems a code once.
    again = browser.http.post(
        "/auth/callback", data={"code": code, "state": state}, headers={"Cookie": f"__Host-signin={kept}"}
    )
    assert again.status_code == 400 and "invalid_grant" in again.text
    assert "__Host-session" not in again.headers.get("set-cookie", "")
    assert browser.idp.code_redemptions == 2 and browser.get_as(str(signed_in), "/tasks").status_code == 200


def test_asking_to_sign_in_stores_nothing(browser: Any) -> None:
    browser.sign_in("alice")
    rows = _rows(browser)
    for _ in range(20):
        assert browser.http.get("/auth/login", follow_redirects=False).status_code == 302
    assert _rows(browser) == rows == 1  # the one session, and nothing for the sign-ins asked for
    browser.sign_in("alice")  # a real sign-in still works (and replaces the session)
    assert browser.get("/tasks").status_code == 200 and _rows(browser) == 1


def _rows(browser: Any) -> int:
    db = sqlite3.connect(browser.settings.state_dir / "sessions.sqlite3")
    try:
        return int(db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize("state", [None, "", "not-the-state"])
def test_missing_or_mismatched_state_is_refused(browser: Any, state: str | None) -> None:
    auth_uri = browser.start_sign_in()
    code, _ = browser.issue_code(auth_uri)
    form = {"code": code} if state is None else {"code": code, "state": state}
    r = browser.post("/auth/callback", data=form)
    assert r.status_code == 400
    assert "Try again" in r.text and "did not match" in r.text
    # The code was never redeemed: MSAL stopped at the state check.
    assert browser.idp.code_redemptions == 0
    assert browser.session_id is None


@pytest.mark.parametrize("nonce", ["another-sign-ins-nonce", None], ids=["other", "missing"])
def test_an_id_token_without_this_sign_ins_nonce_is_refused(browser: Any, nonce: str | None) -> None:
    # The identity provider (or whoever stands in for it) answers with an ID token minted for another
    # sign-in, or with no nonce at all: a replayed or injected ID token.
    auth_uri = browser.start_sign_in()
    code, state = browser.issue_code(auth_uri)
    assert browser.idp.codes[code]["nonce"] == _query(auth_uri)["nonce"]
    browser.idp.codes[code]["nonce"] = nonce
    r = browser.post("/auth/callback", data={"code": code, "state": state})
    assert r.status_code == 400
    assert "This sign-in could not be verified" in r.text and "(nonce)" in r.text
    assert browser.idp.code_redemptions == 1  # redeemed, then refused on the ID token's nonce
    assert browser.session_id is None


def test_idp_error_shows_a_clear_page_not_a_500(browser: Any) -> None:
    auth_uri = browser.start_sign_in()
    state = _query(auth_uri)["state"]
    r = browser.post(
        "/auth/callback",
        data={
            "error": "access_denied",
            "state": state,
            "error_description": "AADSTS65004: User declined to consent.",
        },
    )
    assert r.status_code == 400
    assert "cancelled or refused" in r.text and "AADSTS65004" in r.text and "Try again" in r.text


def test_query_mode_callback_works_too(browser: Any) -> None:
    auth_uri = browser.start_sign_in("/chain")
    code, state = browser.issue_code(auth_uri)
    r = browser.get("/auth/callback", params={"code": code, "state": state})
    assert r.status_code == 303 and r.headers["location"] == "/chain"


def test_callback_without_a_sign_in_in_this_browser_is_refused(browser: Any) -> None:
    r = browser.post("/auth/callback", data={"code": "x", "state": "y"})
    assert r.status_code == 400 and "Try again" in r.text


def test_code_injected_from_another_sign_in_fails_pkce(browser: Any) -> None:
    attacker_auth = browser.start_sign_in()
    attacker_code, _ = browser.issue_code(attacker_auth, "bob")
    victim_auth = browser.start_sign_in()
    victim_state = _query(victim_auth)["state"]
    r = browser.post("/auth/callback", data={"code": attacker_code, "state": victim_state})
    assert r.status_code == 400 and browser.session_id is None


def test_user_from_a_tenant_not_allowed_is_refused_and_offered_another_account(browser: Any) -> None:
    r = browser.sign_in("carol")
    assert r.status_code == 403
    assert "not allowed" in r.text and browser.session_id is None
    # The provider would sign carol in again without asking: the page offers a sign-in that asks which account.
    assert 'href="/auth/switch-account"' in r.text and "Sign in with another account" in r.text
    r = browser.get("/auth/switch-account", params={"next": "/tasks"})
    assert r.status_code == 302
    q = _query(r.headers["location"])
    assert q["prompt"] == "select_account" and q["response_mode"] == "form_post"
    assert q["code_challenge_method"] == "S256"
    code, state = browser.issue_code(r.headers["location"], "alice")
    done = browser.post("/auth/callback", data={"code": code, "state": state, "session_state": "s"})
    assert done.status_code == 303 and done.headers["location"] == "/tasks" and browser.session_id


def test_sign_out_ends_the_session_and_signs_out_at_the_identity_provider(browser: Any) -> None:
    browser.sign_in("alice")
    old = browser.session_id
    csrf = browser.csrf("/tasks")
    r = browser.post("/auth/logout", data={"csrf_token": csrf})
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith("https://login.example.test/9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d/oauth2/v2.0/logout?")
    q = _query(location)
    assert q["post_logout_redirect_uri"] == "http://localhost:8000/"
    assert q["client_id"] == browser.settings.client_id
    assert "logout_hint" in q
    assert browser.cookie_attributes(r, "__Host-session")["max-age"] == "0"
    assert browser.get_as(old, "/tasks").status_code == 302


def test_sign_out_needs_the_csrf_token(browser: Any) -> None:
    browser.sign_in("alice")
    r = browser.post("/auth/logout", data={"csrf_token": "wrong"})
    assert r.status_code == 403
    assert browser.get("/tasks").status_code == 200
