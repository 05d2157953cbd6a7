"""The access token MSAL gave last is reused for the next page while MSAL would give it again (guidance:
token-management): a steady page asks MSAL nothing, and everything that would make MSAL answer otherwise makes
the web ask it again: the token nearing its expiry or its `refresh_on`, a forced refresh, a claims challenge.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msal
import pytest

from .conftest import Browser, FakeApi, claims_challenge, on_loop

pytestmark = pytest.mark.guidance("token-management")


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """The scopes of each silent acquisition the web asks of MSAL."""
    calls: list[list[str]] = []
    original = msal.ClientApplication.acquire_token_silent_with_error

    def counted(self: Any, scopes: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append(list(scopes))
        return original(self, scopes, *args, **kwargs)

    monkeypatch.setattr(msal.ClientApplication, "acquire_token_silent_with_error", counted)
    yield calls


def _api_tokens(fake_api: FakeApi) -> list[str | None]:
    return [authorization for _, path, authorization, _ in fake_api.calls if path == "/tasks"]


def _api_asks(asked: list[list[str]], browser: Browser) -> int:
    return sum(1 for scopes in asked if scopes == list(browser.settings.api_scopes))


def test_a_steady_page_reuses_the_token_msal_gave_without_asking_it_again(
    browser: Browser, fake_api: FakeApi, asked: list[list[str]]
) -> None:
    browser.sign_in("alice")
    assert browser.get("/tasks").status_code == 200
    before = _api_asks(asked, browser)
    for _ in range(3):
        assert browser.get("/tasks").status_code == 200
    assert _api_asks(asked, browser) == before
    assert len(set(_api_tokens(fake_api)[-4:])) == 1


def test_five_minutes_before_expiry_msal_is_asked_again(
    browser: Browser, fake_api: FakeApi, asked: list[list[str]]
) -> None:
    browser.sign_in("alice")
    assert browser.get("/tasks").status_code == 200
    tokens = browser.http.app.state.clients.signin.tokens  # type: ignore[attr-defined]
    before, issued = _api_asks(asked, browser), time.time()
    tokens.clock = lambda: issued + 3600 - 299  # within MSAL's five minutes of the token's expiry
    assert browser.get("/tasks").status_code == 200
    assert _api_asks(asked, browser) == before + 1


def test_a_token_msal_renews_early_is_reused_only_until_its_refresh_on(
    browser: Browser, asked: list[list[str]]
) -> None:
    browser.idp.access_token_refresh_in = 600  # Entra's refresh_in: MSAL renews the token after ten minutes
    browser.sign_in("alice")
    assert browser.get("/tasks").status_code == 200
    tokens = browser.http.app.state.clients.signin.tokens  # type: ignore[attr-defined]
    before, issued = _api_asks(asked, browser), time.time()
    tokens.clock = lambda: issued + 500
    assert browser.get("/tasks").status_code == 200
    assert _api_asks(asked, browser) == before  # before refresh_on: reused
    tokens.clock = lambda: issued + 601
    assert browser.get("/tasks").status_code == 200
    assert _api_asks(asked, browser) == before + 1  # past it: MSAL decides (and would renew)


def test_a_forced_refresh_asks_msal_and_the_token_service(browser: Browser, asked: list[list[str]]) -> None:
    browser.sign_in("alice")
    assert browser.get("/tasks").status_code == 200
    before, refreshes = _api_asks(asked, browser), browser.idp.refreshes

    async def forced(c: Any, session: Any) -> str:
        got = await c.signin.tokens.acquire(session, list(c.settings.api_scopes), force_refresh=True)
        return str(got.token)

    renewed = on_loop(browser, forced)
    assert _api_asks(asked, browser) == before + 1 and browser.idp.refreshes == refreshes + 1

    async def steady(c: Any, session: Any) -> str:
        got = await c.signin.tokens.acquire(session, list(c.settings.api_scopes))
        return str(got.token)

    assert on_loop(browser, steady) == renewed  # and the renewed token is the one reused from then on


def test_after_a_claims_challenge_the_reused_token_is_gone(browser: Browser, fake_api: FakeApi) -> None:
    browser.sign_in("alice")
    assert browser.get("/tasks").status_code == 200
    when = int(time.time()) + 1
    fake_api.challenge, fake_api.challenges = claims_challenge(f'{{"access_token":{{"nbf":{{"value":"{when}"}}}}}}'), 1
    refused = browser.get("/tasks")
    assert refused.status_code in (302, 303)  # to sign in again, meeting the claims

    async def steady(c: Any, session: Any) -> Any:
        return await c.signin.tokens.acquire(session, list(c.settings.api_scopes))

    # The tokens held for the session were dropped with the challenge: none is handed out, reused or not.
    assert on_loop(browser, steady) is None
