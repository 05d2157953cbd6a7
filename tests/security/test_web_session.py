"""Sessions and what the browser is told, at the running web app over HTTP (security catalog, section (c)).

A new session id at every sign-in and none an attacker can plant; idle and absolute timeouts; forms posted
from another site refused; the security headers on every answer, error pages and redirects included, HSTS
where the app is served under its own name; nothing another site's script may read. The cookie's own flags
and sign-out are proved in tests/web/test_web_live.py and tests/web/test_token_management.py.

The timeouts are met without waiting: the session's record in the web's store is dated back, as the clock
moving on would leave it, and the next request goes over HTTP to the running web app.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from devtools.ports import free_port
from web.session_store import record_key

from tests.chain import csrf
from tests.e2e.test_chain import sign_in
from tests.support.launch import LiveEmulator, LiveService, RunningStack
from tests.support.people import Person
from tests.support.tokens import Api, Issuer

pytestmark = pytest.mark.guidance("user-authentication")

ALICE, BOB = "alice@contoso.test", "bob@contoso.test"
EVIL = "https://evil.test"


@pytest.fixture
def people() -> Iterator[list[Person]]:
    made: list[Person] = []
    yield made
    for person in made:
        person.http.close()


def _signed_in(people: list[Person], stack: RunningStack, user: str = ALICE, next_path: str = "/tasks") -> Person:
    people.append(Person())
    sign_in(people[-1], stack, user, next_path)
    return people[-1]


def _session_id(person: Person) -> str:
    value = person.jar.get("__Host-session")
    assert value, "no session cookie"
    return value


def _as(base: str, session_id: str, path: str = "/tasks") -> httpx.Response:
    """A request carrying only this session cookie, as a stolen or planted one would be sent."""
    return httpx.get(f"{base}{path}", headers={"Cookie": f"__Host-session={session_id}"}, timeout=15)


# -- session ids ----------------------------------------------------------------------------------


def test_every_sign_in_gets_a_new_session_id_and_the_one_before_is_dead(
    stack: RunningStack, people: list[Person]
) -> None:
    alice = _signed_in(people, stack)
    first = _session_id(alice)
    assert alice.get(f"{stack.web}/tasks").status_code == 200
    sign_in(alice, stack, ALICE)  # the same person, signing in again in the same browser
    second = _session_id(alice)
    assert second != first and len(second) >= 40
    assert _as(stack.web, first).status_code == 302  # gone server-side, not only from this browser's jar
    assert _as(stack.web, second).status_code == 200


@pytest.mark.parametrize("planted", ["an-id-of-the-attackers-choosing", "mallorys-own-session"])
def test_a_session_id_planted_before_sign_in_never_becomes_the_signed_in_session(
    stack: RunningStack, people: list[Person], planted: str
) -> None:
    # Session fixation: mallory sets the cookie in alice's browser (a sibling site, a shared computer) and
    # waits for alice to sign in with it; her own live session id is the strongest plant.
    if planted == "mallorys-own-session":
        planted = _session_id(_signed_in(people, stack, BOB))
    alice = Person()
    people.append(alice)
    r = alice.get(f"{stack.web}/auth/login?next=/tasks", headers={"Cookie": f"__Host-session={planted}"})
    action, fields = alice.sign_in_at_emulator(r.headers["location"], stack.info["demo_password"], ALICE)
    answered = httpx.post(
        action,
        data=fields,
        headers={"Cookie": f"__Host-session={planted}; __Host-signin={alice.jar.get('__Host-signin')}"},
        timeout=15,
    )
    assert answered.status_code == 303, answered.text[:300]
    issued = Person.cookie_attributes(answered, "__Host-session")["value"]
    assert issued and issued != planted
    assert _as(stack.web, issued).status_code == 200
    assert _as(stack.web, planted).status_code == 302  # never alice's; a live one was ended with the sign-in


# -- idle and absolute timeouts ---------------------------------------------------------------------

IDLE, ABSOLUTE = 600, 3600


@pytest.fixture
def web(web_factory: Callable[..., LiveService], tmp_path: Path) -> LiveService:
    """A web app of its own (its store is this test's to date back), with its timeouts set; no api runs."""
    return web_factory(
        api_url=f"https://localhost:{free_port()}",
        state_dir=str(tmp_path / "web-state"),
        session_idle_timeout=str(IDLE),
        session_absolute_timeout=str(ABSOLUTE),
    )


def _sign_in_at(web: LiveService, live: LiveEmulator, person: Person) -> str:
    r = person.get(f"{web.base}/auth/login?next=/")
    action, fields = person.sign_in_at_emulator(r.headers["location"], live.password)
    assert person.post(action, fields).status_code == 303
    return _session_id(person)


def _date_back(state: Path, session_id: str, *, last_used: float, signed_in: float) -> None:
    """The session's record as the clock would leave it: last used, and begun, that many seconds ago."""
    now = time.time()
    db = sqlite3.connect(state / "sessions.sqlite3")
    try:
        with db:
            changed = db.execute(
                "UPDATE sessions SET last_seen = ?, created_at = ? WHERE key = ?",
                (now - last_used, now - signed_in, record_key(session_id)),
            ).rowcount
    finally:
        db.close()
    assert changed == 1, "no such session in the store"


def _stored(state: Path, session_id: str) -> bool:
    db = sqlite3.connect(state / "sessions.sqlite3")
    try:
        return db.execute("SELECT 1 FROM sessions WHERE key = ?", (record_key(session_id),)).fetchone() is not None
    finally:
        db.close()


def _signed_in_as_alice(web: LiveService, session_id: str) -> bool:
    page = _as(web.base, session_id, "/")
    assert page.status_code == 200
    return "Alice Adams" in page.text


def test_a_session_left_idle_past_its_timeout_is_ended(
    live: LiveEmulator, web: LiveService, tmp_path: Path, people: list[Person]
) -> None:
    people.append(Person())
    session_id = _sign_in_at(web, live, people[-1])
    state = tmp_path / "web-state"
    _date_back(state, session_id, last_used=IDLE - 60, signed_in=IDLE)
    assert _signed_in_as_alice(web, session_id)  # idle, but not for long enough
    _date_back(state, session_id, last_used=IDLE + 1, signed_in=IDLE + 1)
    r = _as(web.base, session_id)
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"
    assert not _stored(state, session_id)  # deleted with its token cache, not just turned away
    assert not _signed_in_as_alice(web, session_id)


def test_a_session_past_its_absolute_lifetime_is_ended_however_active(
    live: LiveEmulator, web: LiveService, tmp_path: Path, people: list[Person]
) -> None:
    people.append(Person())
    session_id = _sign_in_at(web, live, people[-1])
    state = tmp_path / "web-state"
    _date_back(state, session_id, last_used=0, signed_in=ABSOLUTE - 60)
    assert _signed_in_as_alice(web, session_id)
    _date_back(state, session_id, last_used=0, signed_in=ABSOLUTE + 1)  # used a moment ago, all day long
    r = _as(web.base, session_id)
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"
    assert not _stored(state, session_id)


# -- cross-site requests ----------------------------------------------------------------------------


def _titles(person: Person, stack: RunningStack) -> str:
    page = person.get(f"{stack.web}/tasks")
    assert page.status_code == 200
    return page.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "http://127.0.0.1"},  # a sibling origin on this very machine
        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site"},  # a browser that sends no Origin still sends this
        {"Sec-Fetch-Site": "same-site"},  # a sibling host under the same site
    ],
    ids=["foreign-origin", "sibling-origin", "both", "fetch-metadata-cross-site", "fetch-metadata-same-site"],
)
def test_a_form_posted_from_another_site_is_refused_even_with_the_right_token(
    stack: RunningStack, people: list[Person], headers: dict[str, str]
) -> None:
    alice = _signed_in(people, stack)
    token = csrf(alice.get(f"{stack.web}/tasks").text)
    title = f"Cross-site {sorted(headers.items())}"
    r = alice.post(f"{stack.web}/tasks", {"csrf_token": token, "title": title}, headers=headers)
    assert r.status_code == 403 and "another site" in r.text, r.text[:300]
    r = alice.post(f"{stack.web}/auth/logout", {"csrf_token": token}, headers=headers)
    assert r.status_code == 403
    assert title not in _titles(alice, stack)  # nothing was added, and alice is still signed in


def test_a_form_without_this_sessions_csrf_token_is_refused(stack: RunningStack, people: list[Person]) -> None:
    alice, bob = _signed_in(people, stack), _signed_in(people, stack, BOB)
    own = {"Origin": stack.web, "Sec-Fetch-Site": "same-origin"}  # as alice's own page posts it
    bobs = csrf(bob.get(f"{stack.web}/tasks").text)
    for form in (
        {"title": "No token"},
        {"title": "Empty token", "csrf_token": ""},
        {"title": "Bobs", "csrf_token": bobs},
    ):
        r = alice.post(f"{stack.web}/tasks", form, headers=own)
        assert r.status_code == 403 and "CSRF" in r.text, (form, r.text[:300])
    r = alice.post(f"{stack.web}/auth/logout", {"csrf_token": bobs}, headers=own)
    assert r.status_code == 403
    page = _titles(alice, stack)
    assert "No token" not in page and "Empty token" not in page
    # The same post with alice's own token goes through: the refusals above were the token's.
    ok = alice.post(f"{stack.web}/tasks", {"csrf_token": csrf(page), "title": "With the token"}, headers=own)
    assert alice.consent_if_asked(ok).status_code == 303
    assert "With the token" in _titles(alice, stack)


def test_a_signed_in_page_read_from_another_site_gets_no_cors_grant(stack: RunningStack, people: list[Person]) -> None:
    alice = _signed_in(people, stack)
    for path in ("/tasks", "/chain", "/"):
        r = alice.get(f"{stack.web}{path}", headers={"Origin": EVIL})
        assert r.status_code == 200
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], path


# -- security headers on every answer ---------------------------------------------------------------


def _csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {d.split()[0]: " ".join(d.split()[1:]) for d in (p.strip() for p in policy.split(";")) if d}


def _assert_page_headers(r: httpx.Response, where: str) -> None:
    csp = _csp(r)
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'", where
    assert csp["frame-ancestors"] == "'none'", where
    assert not re.search(r"unsafe-|data:|\*", r.headers["content-security-policy"]), where
    assert r.headers["x-content-type-options"] == "nosniff", where
    assert r.headers["referrer-policy"] == "no-referrer", where
    assert r.headers["x-frame-options"] == "DENY", where
    assert "strict-transport-security" not in r.headers, where  # http://localhost: HSTS would pin every port


def _assert_no_inline_code(r: httpx.Response, where: str) -> None:
    if "text/html" not in r.headers.get("content-type", ""):
        return
    scripts = re.findall(r"<script\b[^>]*>", r.text, re.I)
    assert all("src=" in s for s in scripts), where
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|javascript:", r.text, re.I), where


def test_every_answer_of_the_web_app_carries_the_security_headers(stack: RunningStack, people: list[Person]) -> None:
    alice = _signed_in(people, stack)
    stranger = Person()
    people.append(stranger)
    web = stack.web
    answers = {
        "home signed in": alice.get(f"{web}/"),
        "tasks": alice.get(f"{web}/tasks"),
        "chain": alice.get(f"{web}/chain"),
        "a page that is not there": alice.get(f"{web}/nowhere"),
        "a method not allowed": alice.http.request("PUT", f"{web}/tasks"),
        "a form without its token": alice.post(f"{web}/tasks", {"title": "x"}),
        "a form too large": alice.post(f"{web}/tasks", {"title": "x" * 20_000}),
        "a form of another kind": alice.post(f"{web}/tasks", content=b"{}", headers={"Content-Type": "text/plain"}),
        "home signed out": stranger.get(f"{web}/"),
        "sign in first": stranger.get(f"{web}/tasks"),
        "to the identity provider": stranger.get(f"{web}/auth/login"),
        "an answer with no sign-in": stranger.post(f"{web}/auth/callback", {"code": "c", "state": "s"}),
        "a stylesheet": stranger.get(f"{web}/static/web.css"),
    }
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {
        "home signed in": 200,
        "tasks": 200,
        "chain": 200,
        "a page that is not there": 404,
        "a method not allowed": 405,
        "a form without its token": 403,
        "a form too large": 413,
        "a form of another kind": 415,
        "home signed out": 200,
        "sign in first": 302,
        "to the identity provider": 302,
        "an answer with no sign-in": 400,
        "a stylesheet": 200,
    }
    for name, r in answers.items():
        _assert_page_headers(r, name)
        _assert_no_inline_code(r, name)
        if name != "a stylesheet":
            # Pages depend on who asks, and so do errors and redirects: never kept by a browser or a proxy.
            assert r.headers["cache-control"] == "no-store", name


@pytest.mark.guidance("protect-api")
@pytest.mark.parametrize("name", ["api", "downstream-api"])
def test_every_answer_of_an_api_carries_the_security_headers(
    stack: RunningStack, http: httpx.Client, issuer: Issuer, targets: dict[str, Api], name: str
) -> None:
    api = targets[name]
    token = {"Authorization": f"Bearer {issuer.token(api, scp=' '.join(api.write_scopes))}"}
    answers = {
        "health": http.get(f"{api.base}/healthz"),
        "an answer for a valid token": http.get(api.url(), headers=token),
        "no token": http.get(api.url()),
        "a bad token": http.get(api.url(), headers={"Authorization": "Bearer x.y.z"}),
        "not there": http.get(f"{api.base}/nowhere", headers=token),
        "a body too large": http.post(api.url(api.write_path), headers=token, json={"title": "x" * 100_000}),
        "an invalid body": http.post(api.url(api.write_path), headers=token, json={"title": 7}),
    }
    assert {k: r.status_code for k, r in answers.items()} == {
        "health": 200,
        "an answer for a valid token": 200,
        "no token": 401,
        "a bad token": 401,
        "not there": 404,
        "a body too large": 413,
        "an invalid body": 422,
    }
    for what, r in answers.items():
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'", what
        assert r.headers["x-content-type-options"] == "nosniff", what
        assert r.headers["referrer-policy"] == "no-referrer", what
        assert r.headers["x-frame-options"] == "DENY", what
        assert r.headers["cache-control"] == "no-store", what
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], what


def test_served_under_its_own_name_every_answer_tells_browsers_to_use_https_only(
    web_factory: Callable[..., LiveService], tmp_path: Path, people: list[Person]
) -> None:
    # A production configuration (web/tests/conftest.py's production_ok): no identity provider is reached
    # for these answers, so nothing leaves this machine. Behind TLS ingress the app itself serves http.
    web = web_factory(
        environment="production",
        authority="https://login.microsoftonline.com/9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d",
        instance_discovery="true",
        graph_url="https://graph.microsoft.com",
        idp_origin="https://login.microsoftonline.com",
        redirect_uri="https://web.example.net/auth/callback",
        post_logout_redirect_uri="https://web.example.net/",
        api_url="https://api.internal.example.net",
        # The name it is served under, and localhost for the health probe that started it.
        allowed_hosts="web.example.net,localhost",
        state_dir=str(tmp_path / "web-state"),
    )
    people.append(Person())
    browser = people[-1]
    host = {"Host": "web.example.net"}
    answers: dict[str, Any] = {
        "health": browser.get(f"{web.base}/healthz", headers=host),
        "home": browser.get(f"{web.base}/", headers=host),
        "not there": browser.get(f"{web.base}/nowhere", headers=host),
        "sign in first": browser.get(f"{web.base}/tasks", headers=host),
        "a stylesheet": browser.get(f"{web.base}/static/web.css", headers=host),
        "cross-site": browser.post(f"{web.base}/tasks", {"t": "x"}, headers={**host, "Origin": EVIL}),
    }
    assert {k: r.status_code for k, r in answers.items()} == {
        "health": 200,
        "home": 200,
        "not there": 404,
        "sign in first": 302,
        "a stylesheet": 200,
        "cross-site": 403,
    }
    for what, r in answers.items():
        assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains", what
        assert _csp(r)["frame-ancestors"] == "'none'", what
