"""The web app as a real process against a live emulator: a person signs in with the emulator's own
pages, gets a server-side session, meets a clear page while the api is down, and signs out."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit
from urllib.request import Request

import httpx
import pytest
from devtools.signin import FormBrowser, parse_forms
from devtools.testing import LiveEmulator, free_port

pytestmark = pytest.mark.live

JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
ALICE_OID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"


class _LocalhostIsSecure(DefaultCookiePolicy):
    """As browsers do: http://localhost is a secure context, so Secure cookies go there too."""

    def return_ok_secure(self, cookie: Any, request: Request) -> bool:
        if urlsplit(request.get_full_url()).hostname == "localhost":
            return True
        ok: bool = super().return_ok_secure(cookie, request)
        return ok


class Person:
    """One browser: follows nothing by itself, so each hop can be checked; remembers every response."""

    def __init__(self) -> None:
        # httpx copies a client's jar into a default-policy one per request, so the browser's jar is
        # kept here and applied through event hooks instead.
        self.jar = httpx.Cookies(CookieJar(policy=_LocalhostIsSecure()))

        def send_cookies(request: httpx.Request) -> None:
            request.headers.pop("cookie", None)
            self.jar.set_cookie_header(request)

        self.http = httpx.Client(
            follow_redirects=False,
            timeout=15,
            event_hooks={"request": [send_cookies], "response": [self.jar.extract_cookies]},
        )
        self.pages = FormBrowser(self.http)
        self.seen: list[httpx.Response] = []

    def get(self, url: str) -> httpx.Response:
        r = self.http.get(url)
        self.seen.append(r)
        return r

    def post(self, url: str, data: dict[str, str]) -> httpx.Response:
        r = self.http.post(url, data=data)
        self.seen.append(r)
        return r

    def sign_in_at_emulator(self, auth_uri: str, live: LiveEmulator) -> tuple[str, dict[str, str]]:
        """The emulator's login (and consent) pages; returns the auto-posting form that goes back."""
        page = self.pages.sign_in(auth_uri, "alice@contoso.test", live.password)
        self.seen.append(page)
        assert page.status_code == 200, page.text[:500]
        forms, _ = parse_forms(page.text)
        assert forms and set(forms[0].fields) >= {"code", "state"}, page.text[:500]
        return urljoin(str(page.url), forms[0].action), forms[0].fields

    def csrf(self, url: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.get(url).text)
        assert match, f"no sign-out form on {url}"
        return match.group(1)


@pytest.fixture
def person() -> Iterator[Person]:
    p = Person()
    yield p
    p.http.close()


@pytest.fixture
def web(web_factory: Callable[..., Any], tmp_path: Path) -> Any:
    # The api is not running: nothing listens on this port.
    return web_factory(api_url=f"https://localhost:{free_port()}", state_dir=str(tmp_path / "web-state"))


def test_sign_in_session_api_unavailable_and_sign_out(
    live: LiveEmulator, web: Any, person: Person, tmp_path: Path
) -> None:
    base = web.base
    # Not signed in: the page sends the person to sign in, remembering where they were going.
    r = person.get(f"{base}/tasks")
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"
    r = person.get(urljoin(base, r.headers["location"]))
    assert r.status_code == 302
    auth_uri = r.headers["location"]
    assert auth_uri.startswith(f"{live.front}/{live.info['tenants']['contoso']}/oauth2/v2.0/authorize?")
    query = parse_qs(urlsplit(auth_uri).query)
    assert query["response_mode"] == ["form_post"] and query["code_challenge_method"] == ["S256"]

    # The emulator's pages, then its auto-posting form back to the web app (form_post).
    action, fields = person.sign_in_at_emulator(auth_uri, live)
    assert action == f"{base}/auth/callback"
    r = person.post(action, fields)
    assert r.status_code == 303 and r.headers["location"] == "/tasks", r.text[:500]
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("__Host-session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= flags
    assert not any(f.startswith("domain") for f in flags)

    # Signed in; the api is down: clear pages, never a 500.
    home = person.get(f"{base}/")
    assert home.status_code == 200 and "Alice Adams" in home.text
    tasks = person.get(f"{base}/tasks")
    assert tasks.status_code == 503 and "The api is unavailable" in tasks.text
    chain = person.get(f"{base}/chain")
    assert chain.status_code == 503 and "The api is unavailable" in chain.text
    assert ALICE_OID in chain.text  # the web's own view of the caller, from the ID token

    # Sign out: here (session and token cache gone), then at the emulator, then back home.
    session_id = person.jar.get("__Host-session")
    r = person.post(f"{base}/auth/logout", {"csrf_token": person.csrf(f"{base}/")})
    assert r.status_code == 302
    end_session = r.headers["location"]
    assert end_session.startswith(f"{live.front}/{live.info['tenants']['contoso']}/oauth2/v2.0/logout?")
    assert parse_qs(urlsplit(end_session).query)["post_logout_redirect_uri"] == ["http://localhost:8000/"]
    r = person.get(end_session)
    assert r.status_code == 302 and r.headers["location"] == "http://localhost:8000/"
    assert "Not signed in" in person.get(f"{base}/").text
    replay = httpx.get(f"{base}/tasks", headers={"Cookie": f"__Host-session={session_id}"})
    assert replay.status_code == 302  # the old session id is dead server-side

    # Tokens never reached the browser, the logs, or the disk in the clear.
    for response in person.seen:
        if response.url.host == "localhost" and response.url.port == 8000:
            exposed = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.multi_items())
            assert not JWT_SHAPE.search(exposed), response.url
    assert not JWT_SHAPE.search(web.log_path.read_text(errors="replace"))
    state = tmp_path / "web-state"
    for path in state.iterdir():
        assert not JWT_SHAPE.search(path.read_bytes().decode("latin-1")), path.name


def test_a_tampered_answer_from_the_sign_in_page_is_a_clear_400(
    live: LiveEmulator, web: Any, person: Person
) -> None:
    r = person.get(f"{web.base}/auth/login?next=/chain")
    action, fields = person.sign_in_at_emulator(r.headers["location"], live)
    r = person.post(action, {**fields, "state": fields["state"] + "x"})
    assert r.status_code == 400
    assert "did not match" in r.text and 'href="/auth/login"' in r.text
    assert person.get(f"{web.base}/chain").status_code == 302  # no session came of it
