"""The web app as a real process against a live emulator: a person signs in with the emulator's own
pages, gets a server-side session, meets a clear page while the api is down, and signs out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from devtools.ports import free_port
from zerotrust.redact import JWT_SHAPE

from tests.support.launch import LiveEmulator
from tests.support.people import ALICE_OID, Person

pytestmark = pytest.mark.live


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
    action, fields = person.sign_in_at_emulator(auth_uri, live.password)
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
    assert parse_qs(urlsplit(end_session).query)["post_logout_redirect_uri"] == [f"{base}/"]
    r = person.get(end_session)
    assert r.status_code == 302 and r.headers["location"] == f"{base}/"
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


def test_a_tampered_answer_from_the_sign_in_page_is_a_clear_400(live: LiveEmulator, web: Any, person: Person) -> None:
    r = person.get(f"{web.base}/auth/login?next=/chain")
    action, fields = person.sign_in_at_emulator(r.headers["location"], live.password)
    r = person.post(action, {**fields, "state": fields["state"] + "x"})
    assert r.status_code == 400
    assert "did not match" in r.text and 'href="/auth/login"' in r.text
    assert person.get(f"{web.base}/chain").status_code == 302  # no session came of it
