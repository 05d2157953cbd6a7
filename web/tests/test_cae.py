"""Claims challenges in the web app, in process: Graph's (every page asks Graph for the user's profile) and
the api's (relayed through on-behalf-of). The person signs in again with the claims, the page or the change
is retried once; a 401 without claims is never retried; a challenge straight after signing in again is
not sent round a second time; a refresh the identity provider refuses ends the session.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from web.consent import Incremental

from .conftest import IDP, Browser, FakeApi, claims_challenge

pytestmark = pytest.mark.guidance("secure-with-cae")


def _nbf_claims(when: float) -> str:
    return json.dumps({"access_token": {"nbf": {"essential": True, "value": str(int(when))}}})


def _posts(fake_api: FakeApi, path: str = "/tasks") -> list[Any]:
    return [c for c in fake_api.calls if c[0] == "POST" and c[1] == path]


def _to_identity_provider(r: Any) -> dict[str, str]:
    """The redirect to the authorization endpoint, and its query."""
    assert r.status_code in (302, 303), r.text[:300]
    location = r.headers["location"]
    assert location.startswith(f"{IDP}/"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _come_back(browser: Browser, r: Any, user: str = "alice") -> Any:
    """The person signs in at the identity provider; the app's callback answers."""
    code, state = browser.issue_code(r.headers["location"], user)
    return browser.post("/auth/callback", data={"code": code, "state": state, "session_state": "s"})


def _cached_access_tokens(browser: Browser) -> int:
    """Access tokens in the signed-in user's server-side cache (read on the app's own event loop)."""
    c = browser.http.app.state.clients  # type: ignore[attr-defined]

    async def count() -> int:
        found = await c.signin.sessions.load(browser.session_id)
        cache = await c.signin.tokens.cache(found) if found else None
        return len(list(cache.search(cache.CredentialType.ACCESS_TOKEN))) if cache else 0

    found: int = browser.http.portal.call(count)  # type: ignore[attr-defined]
    return found


def test_the_web_declares_cp1_and_every_page_asks_graph(browser: Browser, fake_api: FakeApi) -> None:
    browser.sign_in("alice")
    page = browser.get("/tasks")
    assert page.status_code == 200 and "Alice Adams (Graph)" in page.text  # the header's name, from Graph
    assert browser.get("/tasks").status_code == 200
    assert fake_api.graph_calls == ["00000003-0000-0000-c000-000000000000"] * 2
    asked = [json.loads(r["claims"]) for r in browser.idp.token_requests if "claims" in r]
    assert asked and all(a["access_token"]["xms_cc"]["values"] == ["CP1"] for a in asked)


def test_graph_is_asked_at_most_once_per_interval_per_session(
    make_browser: Callable[..., Browser], fake_api: FakeApi
) -> None:
    """With graph_check_seconds (30 by default), the pages within it show Graph's profile without asking again."""
    browser = make_browser(graph_check_seconds=30)
    browser.sign_in("alice")
    for _ in range(3):
        page = browser.get("/tasks")
        assert page.status_code == 200 and "Alice Adams (Graph)" in page.text
    assert fake_api.graph_calls == ["00000003-0000-0000-c000-000000000000"]


def test_a_graph_challenge_sends_the_person_to_sign_in_again_and_the_page_comes_back(
    browser: Browser, fake_api: FakeApi
) -> None:
    browser.sign_in("alice")
    assert browser.get("/tasks").status_code == 200
    revoked = time.time() + 1
    fake_api.graph_challenge = claims_challenge(_nbf_claims(revoked), realm="")

    r = browser.get("/tasks")
    query = _to_identity_provider(r)
    claims = json.loads(query["claims"])
    assert claims["access_token"]["nbf"]["value"] == str(int(revoked))  # the challenge's claims, passed on
    assert claims["access_token"]["xms_cc"]["values"] == ["CP1"]
    assert query["login_hint"] == "alice@contoso.test"
    assert _cached_access_tokens(browser) == 0  # nothing held for her is used again

    fake_api.graph_challenge = None  # the new sign-in's tokens satisfy Graph
    back = _come_back(browser, r)
    assert back.status_code == 303 and back.headers["location"] == "/tasks"
    assert browser.get("/tasks").status_code == 200


def test_turning_back_from_the_sign_in_a_challenge_asked_for_asks_again_not_an_error(
    browser: Browser, fake_api: FakeApi
) -> None:
    # Revoked moments after signing in (a workshop's pace): the tokens are gone, and going back to the page
    # instead of signing in is one more sign-in prompt, never "No access to the api".
    browser.sign_in("alice")
    fake_api.graph_challenge = claims_challenge(_nbf_claims(time.time() + 1), realm="")
    _to_identity_provider(browser.get("/tasks"))
    fake_api.graph_challenge = None
    again = browser.get("/tasks")
    assert again.status_code == 302 and again.headers["location"] == "/auth/login?next=%2Ftasks", again.text[:300]


def test_an_api_challenge_on_a_change_does_it_exactly_once_after_signing_in_again(
    browser: Browser, fake_api: FakeApi
) -> None:
    browser.sign_in("alice")
    csrf = browser.csrf("/tasks")
    fake_api.challenge, fake_api.challenges = claims_challenge(_nbf_claims(time.time() + 1)), 1

    r = browser.post("/tasks", data={"title": "Buy milk", "csrf_token": csrf})
    _to_identity_provider(r)
    assert len(_posts(fake_api)) == 1 and fake_api.tasks == {}  # refused, not done

    back = _come_back(browser, r)
    assert back.status_code == 303 and back.headers["location"] == "/tasks"
    assert [t["title"] for t in fake_api.tasks.values()] == ["Buy milk"]  # done once, on return
    assert len(_posts(fake_api)) == 2  # the refused attempt and exactly one retry


@pytest.mark.parametrize(
    "header",
    ['Bearer realm="api", error="invalid_token"', 'Bearer realm="api", error="insufficient_claims", claims="%%"'],
    ids=["invalid-token", "unreadable-claims"],
)
def test_a_401_without_usable_claims_is_never_retried(browser: Browser, fake_api: FakeApi, header: str) -> None:
    browser.sign_in("alice")
    csrf = browser.csrf("/tasks")
    fake_api.challenge, fake_api.challenges = header, 10

    r = browser.post("/tasks", data={"title": "Buy milk", "csrf_token": csrf})
    assert r.status_code == 502 and "did not accept the sign-in" in r.text
    assert len(_posts(fake_api)) == 1 and fake_api.tasks == {}
    reads = len(fake_api.calls)
    page = browser.get("/tasks")
    assert page.status_code == 502 and "location" not in page.headers
    assert [c[:2] for c in fake_api.calls[reads:]] == [("GET", "/tasks")]


def test_challenged_again_right_after_signing_in_again_is_not_sent_round_again(
    browser: Browser, fake_api: FakeApi
) -> None:
    browser.sign_in("alice")
    csrf = browser.csrf("/tasks")
    event = time.time() + 1
    fake_api.challenge, fake_api.challenges = claims_challenge(_nbf_claims(event)), 2
    r = browser.post("/tasks", data={"title": "Buy milk", "csrf_token": csrf})
    back = _come_back(browser, r)
    # The retry was challenged too: said so, not retried again, nothing done.
    assert back.status_code == 401 and "Nothing was changed" in back.text
    assert len(_posts(fake_api)) == 2 and fake_api.tasks == {}

    # A page whose challenge names an event older than this new session: a fresh sign-in can't help.
    fake_api.challenge, fake_api.challenges = claims_challenge(_nbf_claims(event - 60)), 1
    page = browser.get("/tasks")
    assert page.status_code == 401 and "could not be renewed" in page.text and "location" not in page.headers


def test_a_different_person_answering_the_sign_in_again_gets_nothing_done(browser: Browser, fake_api: FakeApi) -> None:
    browser.sign_in("alice")
    csrf = browser.csrf("/tasks")
    fake_api.challenge, fake_api.challenges = claims_challenge(_nbf_claims(time.time() + 1)), 1
    r = browser.post("/tasks", data={"title": "Buy milk", "csrf_token": csrf})
    back = _come_back(browser, r, user="bob")
    assert back.status_code == 403 and fake_api.tasks == {}


def test_a_refused_refresh_ends_the_session(
    browser: Browser, fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    import web.dependencies

    browser.idp.access_token_lifetime = 60  # MSAL renews tokens with under five minutes left
    browser.sign_in("alice")
    old = browser.session_id
    assert old
    monkeypatch.setattr(web.dependencies, "FRESH_SESSION_SECONDS", 0)
    browser.idp.refuse_refresh = True  # e.g. the account disabled, the sessions revoked
    r = browser.get("/tasks")
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"
    # The session is gone on the server, not just skipped: its cookie opens nothing any more.
    assert browser.get_as(old, "/tasks").headers["location"].startswith("/auth/login")
    assert fake_api.calls == []


def test_a_reauth_round_trip_is_stored_and_read_back() -> None:
    asked = Incremental("o", "t", None, reauth=True)
    assert Incremental.from_dict(asked.to_dict()) == asked
    assert Incremental.from_dict({"oid": "o", "tid": "t", "write": None}) == Incremental("o", "t")


# -- step-up: the api asks for authentication context c1 --------------------------------------------

C1 = json.dumps({"access_token": {"acrs": {"essential": True, "value": "c1"}}})


def test_a_step_up_challenge_on_a_change_asks_the_person_to_confirm_then_does_it_once(
    browser: Browser, fake_api: FakeApi
) -> None:
    browser.sign_in("alice")
    fake_api.tasks["t1"] = {"id": "t1", "title": "old", "done": False}
    csrf = browser.csrf("/tasks")
    held = _cached_access_tokens(browser)
    fake_api.challenge, fake_api.challenges = claims_challenge(C1), 1

    r = browser.post("/tasks/delete-all", data={"csrf_token": csrf})
    assert r.status_code == 200 and "Confirm it's you" in r.text and "deleting all your tasks" in r.text
    assert fake_api.tasks  # nothing done yet
    assert _cached_access_tokens(browser) == held  # a step-up drops nothing
    link = re.search(r'href="([^"]+)">Continue', r.text)
    assert link is not None
    query = {k: v[0] for k, v in parse_qs(urlsplit(html.unescape(link[1])).query).items()}
    assert json.loads(query["claims"])["access_token"]["acrs"] == {"essential": True, "value": "c1"}
    assert "Tasks.ReadWrite" in query["scope"]  # the token the change needs, asked for with the context

    code, state = browser.issue_code(html.unescape(link[1]), "alice")
    back = browser.post("/auth/callback", data={"code": code, "state": state, "session_state": "s"})
    assert back.status_code == 303 and back.headers["location"] == "/tasks"
    assert fake_api.tasks == {}
    assert [c[:2] for c in fake_api.calls if c[0] == "DELETE"] == [("DELETE", "/tasks"), ("DELETE", "/tasks")]


def test_a_step_up_challenge_on_a_page_asks_to_confirm_then_shows_it(browser: Browser, fake_api: FakeApi) -> None:
    browser.sign_in("alice")
    fake_api.challenge, fake_api.challenges = claims_challenge(C1), 1
    r = browser.get("/tasks")
    assert r.status_code == 200 and "Confirm it's you" in r.text and "opening this page" in r.text
    link = re.search(r'href="([^"]+)">Continue', r.text)
    assert link is not None
    code, state = browser.issue_code(html.unescape(link[1]), "alice")
    back = browser.post("/auth/callback", data={"code": code, "state": state, "session_state": "s"})
    assert back.status_code == 303 and back.headers["location"] == "/tasks"
    assert browser.get("/tasks").status_code == 200
