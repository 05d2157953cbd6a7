"""The sign-in flow at the web app, attacked over HTTP against running services (security catalog, section (b)).

A person's browser is played over HTTP (tests.support.people.Person) and an attacker acts beside it: the
identity provider's answer posted without its state or with another, posted again, carrying a code from
another sign-in, or an ID token minted for another nonce; a post-login address that leads off the site;
and where the code travels. Every refusal is a 400 page with a way to start again, and no session comes of
it. Most cases run against `make run`'s stack; the one that needs a consent, a second factor and a
revocation in a known order runs its own chain on an emulator of its own.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from zerotrust.redact import JWT_SHAPE

from tests.chain import csrf, start_chain
from tests.support.launch import LiveEmulator, RunningStack
from tests.support.people import Person

pytestmark = pytest.mark.guidance("user-authentication")

ALICE = "alice@contoso.test"
AUTHORIZE = "/oauth2/v2.0/authorize?"
# RFC 7636 4.2: BASE64URL(SHA256(verifier)), 43 characters without padding.
S256_CHALLENGE = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")


@pytest.fixture
def people() -> Iterator[list[Person]]:
    """People made by a test (`people.append(Person())`), their clients closed after it."""
    made: list[Person] = []
    yield made
    for person in made:
        person.http.close()


def _person(people: list[Person]) -> Person:
    people.append(Person())
    return people[-1]


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _begin(person: Person, stack: RunningStack, next_path: str = "/tasks") -> str:
    """The web app's redirect to the identity provider: the authorize URL it built."""
    r = person.get(f"{stack.web}/auth/login", params={"next": next_path})
    assert r.status_code == 302, r.text[:300]
    assert AUTHORIZE in r.headers["location"]
    return r.headers["location"]


def _answer(person: Person, stack: RunningStack, auth_uri: str, user: str = ALICE) -> tuple[str, dict[str, str]]:
    """Signs in at the identity provider; its form_post answer (where it goes, and its fields), not yet sent."""
    return person.sign_in_at_emulator(auth_uri, stack.info["demo_password"], user)


def _assert_no_session(person: Person, stack: RunningStack, refused: httpx.Response) -> None:
    assert not [h for h in refused.headers.get_list("set-cookie") if h.startswith("__Host-session=")]
    assert person.jar.get("__Host-session") is None
    r = person.get(f"{stack.web}/tasks")
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"


def _assert_refused_page(r: httpx.Response, why: str) -> None:
    assert r.status_code == 400, r.text[:500]
    assert why in r.text and 'href="/auth/login"' in r.text  # says what happened, and how to start again


@pytest.mark.parametrize("state", [None, "", "not-this-sign-ins-state"], ids=["missing", "empty", "other"])
def test_an_answer_without_this_sign_ins_state_is_refused_before_its_code_is_redeemed(
    stack: RunningStack, people: list[Person], state: str | None
) -> None:
    alice = _person(people)
    action, fields = _answer(alice, stack, _begin(alice, stack))
    form = {k: v for k, v in fields.items() if k != "state"} | ({} if state is None else {"state": state})
    before = stack.token_requests()
    r = alice.post(action, form)
    _assert_refused_page(r, "did not match")
    assert stack.token_requests() == before  # MSAL stopped at the state: the code never left the web app
    _assert_no_session(alice, stack, r)


def test_a_replayed_answer_gets_no_session_in_the_same_browser_or_another(
    stack: RunningStack, people: list[Person]
) -> None:
    alice = _person(people)
    auth_uri = _begin(alice, stack)
    sign_in_cookie = alice.jar.get("__Host-signin")
    assert sign_in_cookie
    action, fields = _answer(alice, stack, auth_uri)
    r = alice.post(action, fields)
    assert r.status_code == 303 and r.headers["location"] == "/tasks"

    # The same answer again, from a browser holding the sign-in cookie as it was when the answer came
    # (alice's own, put back; or copied with the answer): the sign-in was used up, the code too.
    replayed = httpx.post(action, data=fields, headers={"Cookie": f"__Host-signin={sign_in_cookie}"}, timeout=15)
    assert replayed.status_code == 400, replayed.text[:500]
    assert 'href="/auth/login"' in replayed.text
    assert not [h for h in replayed.headers.get_list("set-cookie") if h.startswith("__Host-session=")]

    # The answer alone (captured from a proxy or a log), sent from the attacker's own browser.
    mallory = _person(people)
    stolen = mallory.post(action, fields)
    assert stolen.status_code == 400, stolen.text[:500]
    _assert_no_session(mallory, stack, stolen)


def test_a_code_from_another_sign_in_injected_into_this_one_is_refused(
    stack: RunningStack, people: list[Person]
) -> None:
    # Mallory signs in as bob in her own browser and keeps the code instead of posting it ...
    mallory = _person(people)
    action, bobs = _answer(mallory, stack, _begin(mallory, stack), "bob@contoso.test")
    # ... then has alice's browser post it with alice's own state (login CSRF; or a code from a log).
    alice = _person(people)
    state = _query(_begin(alice, stack))["state"]
    r = alice.post(action, {"code": bobs["code"], "state": state})
    assert r.status_code == 400, r.text[:500]
    # The code was bound to mallory's PKCE challenge; alice's sign-in sent its own verifier (AADSTS501481).
    assert "invalid_grant" in r.text and "AADSTS501481" in r.text
    _assert_no_session(alice, stack, r)
    assert "Not signed in" in alice.get(f"{stack.web}/").text  # alice is nobody, and certainly not bob


@pytest.mark.parametrize("nonce", ["an-attackers-nonce", None], ids=["other", "missing"])
def test_an_id_token_minted_for_another_nonce_is_refused(
    stack: RunningStack, people: list[Person], nonce: str | None
) -> None:
    # The identity provider puts the authorize request's nonce into the ID token: asked with another one
    # (or none), it mints an ID token that is not this sign-in's, as an injected or replayed one would be.
    alice = _person(people)
    parts = urlsplit(_begin(alice, stack))
    query = {k: v for k, v in _query(parts.geturl()).items() if k != "nonce"} | ({"nonce": nonce} if nonce else {})
    action, fields = _answer(alice, stack, urlunsplit(parts._replace(query=urlencode(query))))
    r = alice.post(action, fields)
    _assert_refused_page(r, "(nonce)")
    _assert_no_session(alice, stack, r)


@pytest.mark.parametrize(
    ("asked", "landed"),
    [
        ("/chain?view=all", "/chain?view=all"),
        ("//evil.test/", "/"),
        ("https://evil.test/", "/"),
        ("/\\evil.test", "/"),
        ("\\\\evil.test", "/"),
        ("/\t/evil.test", "/"),
        ("/\r\nLocation: https://evil.test/", "/"),
        ("http:evil.test", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.test", "/"),
        ("/" + "a" * 600, "/"),
    ],
    ids=[
        "own-path",
        "scheme-relative",
        "absolute",
        "backslash",
        "backslashes",
        "tab",
        "header-injection",
        "scheme-no-slashes",
        "javascript",
        "no-leading-slash",
        "too-long",
    ],
)
def test_after_sign_in_the_browser_goes_only_to_a_path_of_this_app(
    stack: RunningStack, people: list[Person], asked: str, landed: str
) -> None:
    alice = _person(people)
    action, fields = _answer(alice, stack, _begin(alice, stack, asked))
    r = alice.post(action, fields)
    assert r.status_code == 303, r.text[:300]
    assert r.headers["location"] == landed
    assert len(r.headers.get_list("location")) == 1


def test_the_code_travels_in_a_post_body_only_and_no_web_page_sends_a_referrer(
    stack: RunningStack, people: list[Person]
) -> None:
    alice = _person(people)
    auth_uri = _begin(alice, stack)
    assert _query(auth_uri)["response_mode"] == "form_post"  # asked back in a POST body, not the URL
    action, fields = _answer(alice, stack, auth_uri)
    code = fields["code"]
    r = alice.post(action, fields)
    assert r.request.method == "POST" and code.encode() in r.request.content
    assert r.status_code == 303 and r.headers["location"] == "/tasks"
    for path in ("/tasks", "/chain", "/"):
        assert alice.get(f"{stack.web}{path}").status_code == 200
    for response in alice.seen:
        addresses = [str(response.request.url), response.headers.get("location", "")]
        assert not [a for a in addresses if code in a or JWT_SHAPE.search(a)], addresses
        if str(response.url).startswith(stack.web):
            # A link followed from any page of the app carries no Referer, so no page's URL leaks anywhere.
            assert response.headers["referrer-policy"] == "no-referrer", response.url


def _authorize_links(responses: list[httpx.Response], confirm_pages: list[str]) -> list[str]:
    found = [r.headers.get("location", "") for r in responses]
    found += [html.unescape(m) for text in confirm_pages for m in re.findall(r'href="([^"]*authorize[^"]*)"', text)]
    return [url for url in found if AUTHORIZE in url]


@pytest.mark.guidance("identity-standards-based-development-methodologies")
def test_every_authorize_request_the_web_app_makes_carries_its_own_pkce_s256_challenge(
    fresh_emulator: LiveEmulator, tmp_path: Path, people: list[Person]
) -> None:
    """Sign-in, the first write's consent, a second factor for a sensitive action and signing in again
    after a revocation: four ways to the identity provider, each with PKCE (S256), state and nonce its own."""
    chain = start_chain(fresh_emulator, tmp_path)
    confirm_pages: list[str] = []
    alice = _person(people)
    try:
        web = chain.web.base
        chain.sign_in(alice)
        page = alice.get(f"{web}/tasks")
        r = alice.post(f"{web}/tasks", {"csrf_token": csrf(page.text), "title": "Proof of possession"})
        assert r.status_code == 303 and AUTHORIZE in r.headers["location"]  # the write scope, asked for now
        assert alice.consent_if_asked(r).status_code == 303
        r = alice.post(f"{web}/tasks/delete-all", {"csrf_token": csrf(alice.get(f"{web}/tasks").text)})
        assert r.status_code == 200 and "Confirm it" in r.text, r.text[:300]  # a second factor first
        confirm_pages.append(r.text)
        fresh_emulator.admin("users/revoke-sessions", upn=ALICE)
        r = alice.get(f"{web}/tasks")  # Graph's claims challenge: sign in again
        assert r.status_code in (302, 303) and AUTHORIZE in r.headers["location"], r.text[:300]
    finally:
        chain.stop()

    requests = _authorize_links(alice.seen, confirm_pages)
    assert len(requests) == 4, requests
    queries = [_query(url) for url in requests]
    for url, q in zip(requests, queries, strict=True):
        assert q["code_challenge_method"] == "S256", url
        assert S256_CHALLENGE.match(q["code_challenge"]), url
        assert q["response_type"] == "code" and q["response_mode"] == "form_post", url
        assert q["state"] and q["nonce"] and "code_verifier" not in q, url
    for name in ("code_challenge", "state", "nonce"):
        assert len({q[name] for q in queries}) == 4, f"a {name} was used twice"
    assert "claims" in queries[2] and "claims" in queries[3]  # the second factor's and the revocation's
