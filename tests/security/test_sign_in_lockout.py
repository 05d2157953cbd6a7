"""The emulator plays Entra's smart lockout and throttling, over HTTP: wrong passwords lock the account (the
right one is refused too, AADSTS50053) until the lockout passes; password spraying from one address blocks
that address; a flood at the token endpoint, from one address or one client application, meets 429 with
`Retry-After` (AADSTS90055). Each test has an emulator of its own with small thresholds and a clock file
(EMULATOR_RATE_CLOCK_FILE), so no test waits a lockout out.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from devtools.signin import FormBrowser, parse_forms

from tests.support.launch import LiveEmulator

pytestmark = pytest.mark.guidance("user-authentication")

WEB_REDIRECT = "http://localhost:8000/auth/callback"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _login_page(emu: LiveEmulator, browser: FormBrowser) -> httpx.Response:
    """The emulator's sign-in page for the web app, as MSAL's authorization request opens it."""
    verifier = secrets.token_urlsafe(48)
    query = {
        "client_id": emu.app_id("web"),
        "response_type": "code",
        "redirect_uri": WEB_REDIRECT,
        "scope": "openid offline_access",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
        "prompt": "login",
    }
    page = browser.http.get(f"{emu.front}/{emu.info['tenants']['contoso']}/oauth2/v2.0/authorize?{urlencode(query)}")
    assert page.status_code == 200 and "password" in parse_forms(page.text)[0][0].fields, page.text[:300]
    return page


def _try(emu: LiveEmulator, user: str, password: str) -> httpx.Response:
    browser = FormBrowser()
    return browser.submit(_login_page(emu, browser), {"username": user, "password": password})


def _signed_in(response: httpx.Response) -> bool:
    """Back to the app with a code: the sign-in went through."""
    location = response.headers.get("location", "")
    return response.status_code == 302 and location.startswith(WEB_REDIRECT) and "code=" in location


def _text(response: httpx.Response) -> str:
    return parse_forms(response.text)[1]


@pytest.fixture
def clock(tmp_path: Path) -> Path:
    path = tmp_path / "emulator-clock"
    path.write_text("0")
    return path


def test_wrong_passwords_lock_the_account_and_the_right_one_waits_too(
    emulator_factory: Callable[..., LiveEmulator], clock: Path
) -> None:
    emu = emulator_factory(lockout_threshold="3", lockout_seconds="60", rate_clock_file=str(clock))
    for _ in range(3):
        wrong = _try(emu, "alice@contoso.test", "not-the-password")
        assert wrong.status_code == 400 and "AADSTS50126" in _text(wrong)
    locked = _try(emu, "alice@contoso.test", emu.password)
    assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= 60
    assert "AADSTS50053" in _text(locked) and "Your account is locked" in _text(locked)
    assert "password" in parse_forms(locked.text)[0][0].fields  # the page stays, with the reason on it
    # The admin center's sign-in counts and refuses alike: no second door for guessing.
    with httpx.Client(timeout=10) as http:
        admin = http.post(
            f"{emu.front}/admin/signin", data={"username": "alice@contoso.test", "password": emu.password}
        )
    assert admin.status_code == 429 and "Your account is locked" in admin.text and admin.headers["retry-after"]
    # Another account from the same address is not locked with it.
    assert _signed_in(_try(emu, "bob@contoso.test", emu.password))
    clock.write_text("61")  # the lockout's clock, past it
    assert _signed_in(_try(emu, "alice@contoso.test", emu.password))


def test_password_spraying_from_one_address_blocks_the_address(
    emulator_factory: Callable[..., LiveEmulator], clock: Path
) -> None:
    emu = emulator_factory(lockout_threshold="10", lockout_peer_threshold="4", rate_clock_file=str(clock))
    # One guess per account, unknown accounts too: no account reaches its own threshold.
    for user in ("alice@contoso.test", "bob@contoso.test", "dave@contoso.test", "nobody@contoso.test"):
        assert _try(emu, user, "Summer2026!").status_code == 400
    blocked = _try(emu, "bob@contoso.test", emu.password)
    assert blocked.status_code == 429 and "Sign-in from your address is blocked" in _text(blocked)
    clock.write_text("61")
    assert _signed_in(_try(emu, "bob@contoso.test", emu.password))


def test_a_flood_at_the_token_endpoint_meets_429(emulator_factory: Callable[..., LiveEmulator], clock: Path) -> None:
    emu = emulator_factory(rate_peer_per_second="0.05", rate_peer_burst="10", rate_clock_file=str(clock))
    url = f"{emu.base}/{emu.info['tenants']['contoso']}/oauth2/v2.0/token"
    with emu.http() as http:
        answers = [http.post(url, data={"grant_type": "client_credentials"}) for _ in range(13)]
        assert [r.status_code for r in answers[:10]] == [400] * 10  # refused for what they are, not yet throttled
        refused = answers[-1]
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 20
        body = refused.json()
        assert body["error_codes"] == [90055] and body["error"] == "temporarily_unavailable"
        # The sign-in pages are throttled too, with a sentence for the person.
        page = http.get(f"{emu.front}/{emu.info['tenants']['contoso']}/oauth2/v2.0/authorize")
        assert page.status_code == 429 and "AADSTS90055" in page.text
        assert http.get(f"{emu.base}/healthz").status_code == 200
        clock.write_text(refused.headers["retry-after"])
        assert http.post(url, data={"grant_type": "client_credentials"}).status_code == 400


def test_one_client_applications_flood_is_its_own(emulator_factory: Callable[..., LiveEmulator], clock: Path) -> None:
    emu = emulator_factory(rate_client_per_second="0.05", rate_client_burst="3", rate_clock_file=str(clock))
    url = f"{emu.base}/{emu.info['tenants']['contoso']}/oauth2/v2.0/token"
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    with emu.http() as http:
        # The CLI is a public client: identified by its id alone, then counted.
        cli = {"grant_type": grant, "client_id": emu.app_id("cli"), "device_code": "unknown"}
        answers = [http.post(url, data=cli) for _ in range(4)]
        assert [r.status_code for r in answers[:3]] == [400] * 3
        assert answers[-1].status_code == 429 and answers[-1].json()["error_codes"] == [90055]
        # A request that does not identify a client is not counted against one.
        stranger = {**cli, "client_id": "00000000-1111-2222-3333-444444444444"}
        assert http.post(url, data=stranger).json()["error_codes"] == [700016]
