"""The attack lab in-process: off unless turned on, never in production, CSRF-protected, and a weak api
shows up as FAIL without a token reaching the page. Firing at the real api is tests/e2e."""

from __future__ import annotations

import json
import re
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.attacks import ATTACKS
from pydantic import ValidationError
from web.settings import Settings
from zerotrust.redact import JWT_SHAPE

from devtools import firing

pytestmark = pytest.mark.guidance("protect-api")


@pytest.fixture
def lab_browser(make_browser: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    # The fake identity provider publishes no key set; the lab gets one of a made-up key.
    public = rsa.generate_private_key(65537, 2048).public_key()
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public)), "kid": "k1"}
    monkeypatch.setattr(firing.KeySetCache, "get", lambda self, jwks_uri, client: {"keys": [jwk]})
    return make_browser(attack_lab=True)


def test_the_lab_is_off_by_default_and_then_404(browser: Any, fake_api: Any) -> None:
    assert Settings().attack_lab is False
    browser.sign_in("alice", next_path="/")
    assert browser.get("/lab").status_code == 404
    assert browser.post("/lab", data={"csrf_token": browser.csrf("/"), "attack": "all"}).status_code == 404
    assert 'href="/lab"' not in browser.get("/").text
    assert fake_api.calls == []


def test_production_refuses_the_lab(production_ok: dict[str, object]) -> None:
    assert Settings(**production_ok).attack_lab is False  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="WEB_ATTACK_LAB"):
        Settings(**production_ok, attack_lab=True)  # type: ignore[arg-type]


def test_signed_out_the_lab_sends_the_person_to_sign_in(lab_browser: Any) -> None:
    r = lab_browser.get("/lab")
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Flab"


def test_the_lab_lists_every_attack_with_its_rule_and_a_fire_button(lab_browser: Any, fake_api: Any) -> None:
    lab_browser.sign_in("alice", next_path="/lab")
    page = lab_browser.get("/lab")
    assert page.status_code == 200
    # The nav links it (marked as the current page here).
    assert re.search(r'<a href="/lab"[^>]*>Attack lab</a>', page.text)
    assert 'name="attack" value="all">Fire all<' in page.text
    for attack in ATTACKS:
        assert f'name="attack" value="{attack.id}">Fire<' in page.text
        for text in (attack.title, attack.rule):
            assert text.replace("'", "&#39;") in page.text, attack.id
    assert fake_api.calls == []  # nothing is fired by looking


@pytest.mark.parametrize("form", [{}, {"csrf_token": ""}, {"csrf_token": "forged"}])
def test_firing_needs_the_sessions_csrf_token(lab_browser: Any, fake_api: Any, form: dict[str, str]) -> None:
    lab_browser.sign_in("alice", next_path="/lab")
    r = lab_browser.post("/lab", data={"attack": "all", **form})
    assert r.status_code == 403 and "CSRF" in r.text
    assert fake_api.calls == []


def test_firing_signed_out_sends_the_person_to_sign_in(lab_browser: Any, fake_api: Any) -> None:
    r = lab_browser.post("/lab", data={"attack": "all", "csrf_token": "x"})
    assert r.status_code == 303 and r.headers["location"] == "/auth/login?next=%2Flab"
    assert fake_api.calls == []


def test_an_unknown_attack_is_a_clear_page(lab_browser: Any, fake_api: Any) -> None:
    lab_browser.sign_in("alice", next_path="/lab")
    r = lab_browser.post("/lab", data={"attack": "rm -rf", "csrf_token": lab_browser.csrf("/lab")})
    assert r.status_code == 400 and "No such attack" in r.text
    assert fake_api.calls == []


@pytest.mark.parametrize("attack", ["no-credentials", "alg-none", "token-in-query"])
def test_a_weak_api_shows_as_fail_and_no_token_reaches_the_page(lab_browser: Any, fake_api: Any, attack: str) -> None:
    # The fake api answers 200 to anything: every attack gets through.
    lab_browser.sign_in("alice", next_path="/lab")
    r = lab_browser.post("/lab", data={"attack": attack, "csrf_token": lab_browser.csrf("/lab")})
    assert r.status_code == 200
    assert re.search(r'class="badge v-fail">FAIL<', r.text)
    assert "expected HTTP 401, got 200" in r.text
    assert "0 passed, 1 failed." in r.text
    assert [c[1] for c in fake_api.calls] == ["/tasks"]  # fired at the api's GET /tasks, once
    assert not JWT_SHAPE.search(r.text)
    for issued in lab_browser.idp.issued:
        assert issued not in r.text


def test_audience_confusion_is_skipped_with_the_reason(lab_browser: Any, fake_api: Any) -> None:
    lab_browser.sign_in("alice", next_path="/lab")
    r = lab_browser.post("/lab", data={"attack": "audience-confusion", "csrf_token": lab_browser.csrf("/lab")})
    assert r.status_code == 200 and 'class="badge v-skip">SKIP<' in r.text
    assert "holds none for downstream-api" in r.text
    assert fake_api.calls == []


def test_a_challenge_is_shown_without_anything_token_shaped() -> None:
    token = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256")
    forged = jwt.encode({"sub": "y"}, "j" * 32, algorithm="HS256")
    shown = firing.shown(f'Bearer realm="api", error_description="{token} {forged}"', token)
    assert token not in shown and forged not in shown and not JWT_SHAPE.search(shown)
    assert shown.startswith('Bearer realm="api"')
    assert len(firing.shown("Bearer " + "x" * 5000, token)) == firing.MAX_CHALLENGE
