"""Two replicas of the web app in process, sharing one Redis (guidance: token-management): a session
started on one works on the other and ends on both; each keeps its own decrypted copy of a user's token
cache, and never uses it once the other replica changed the cache in the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.redis import RedisFrontStack

from .conftest import IDP, Browser, FakeApi, claims_challenge, on_loop

pytestmark = pytest.mark.guidance("token-management")


@pytest.fixture
def replicas(make_browser: Callable[..., Browser], redis_front: RedisFrontStack) -> tuple[Browser, Browser]:
    """Replicas A and B: one store (reached through the token front, each replica logging in with the web's
    managed identity), one sealing key (the same state_dir), two processes' worth of memory."""
    return make_browser(session_store=redis_front.url), make_browser(session_store=redis_front.url)


def _same_browser(a: Browser, b: Browser) -> None:
    """B's requests carry A's session cookie, as a browser's would behind a load balancer."""
    for cookie in a.http.cookies.jar:
        if cookie.name == "__Host-session":
            b.http.cookies.jar.set_cookie(cookie)
    assert b.session_id == a.session_id


def _access_tokens(browser: Browser) -> list[str]:
    """The access tokens that replica would use for the session (its memory copy, or the store's)."""

    async def held(c: Any, session: Any) -> list[str]:
        cache = await c.signin.tokens.cache(session)
        return [str(t["secret"]) for t in cache.search(cache.CredentialType.ACCESS_TOKEN)] if cache else []

    found: list[str] = on_loop(browser, held)
    return found


def _api_calls(fake_api: FakeApi) -> list[str | None]:
    return [authorization for _, path, authorization, _ in fake_api.calls if path == "/tasks"]


def test_a_session_started_on_one_replica_is_used_and_ended_on_the_other(
    replicas: tuple[Browser, Browser], fake_api: FakeApi, redis_front: RedisFrontStack
) -> None:
    a, b = replicas
    a.sign_in("alice")
    _same_browser(a, b)
    page = b.get("/tasks")
    assert page.status_code == 200 and "Alice Adams" in page.text
    # Each replica logged in to the store with the web's managed identity token, through the front.
    assert redis_front.front.counters.snapshot()["accepted"] >= 2
    r = b.post("/tasks", data={"title": "Added on B", "csrf_token": b.csrf("/tasks")})
    assert r.status_code == 303
    assert "Added on B" in a.get("/tasks").text

    r = b.post("/auth/logout", data={"csrf_token": b.csrf("/")})
    assert r.status_code == 302 and r.headers["location"].startswith(f"{IDP}/")
    r = a.get("/tasks")  # A's next request: the session is gone for A too
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"


def test_tokens_dropped_on_one_replica_are_not_used_from_the_others_memory(
    replicas: tuple[Browser, Browser], fake_api: FakeApi
) -> None:
    a, b = replicas
    a.sign_in("alice")
    _same_browser(a, b)
    assert a.get("/tasks").status_code == 200 and b.get("/tasks").status_code == 200
    assert _access_tokens(a) and _access_tokens(b)  # each replica holds a decrypted copy now

    # Graph's claims challenge reaches B: B drops every token of the user and sends them to sign in again.
    fake_api.graph_challenge = claims_challenge('{"access_token": {"nbf": {"essential": true}}}', realm="")
    r = b.get("/tasks")
    assert r.status_code == 302 and r.headers["location"].startswith(f"{IDP}/")
    fake_api.graph_challenge = None

    calls = len(_api_calls(fake_api))
    assert _access_tokens(a) == []  # A's copy was older than the store's: read again, and empty
    assert a.get("/tasks").status_code != 200
    assert len(_api_calls(fake_api)) == calls  # no dropped token reached the api from A


def test_a_token_refreshed_on_one_replica_is_the_one_the_other_uses(
    replicas: tuple[Browser, Browser], fake_api: FakeApi
) -> None:
    a, b = replicas
    a.sign_in("alice")
    _same_browser(a, b)
    assert a.get("/tasks").status_code == 200 and b.get("/tasks").status_code == 200
    before = _api_calls(fake_api)[-1]

    async def refresh(c: Any, session: Any) -> str:
        got = await c.signin.tokens.acquire(session, list(c.settings.api_scopes), force_refresh=True)
        return str(got.token)

    renewed = on_loop(b, refresh)
    assert f"Bearer {renewed}" != before
    refreshes = a.idp.refreshes
    assert a.get("/tasks").status_code == 200
    assert _api_calls(fake_api)[-1] == f"Bearer {renewed}"  # A took B's token from the store
    assert a.idp.refreshes == refreshes  # and did not refresh again itself
    assert renewed in _access_tokens(a)


def test_an_unchanged_cache_is_not_read_again_from_the_store(
    replicas: tuple[Browser, Browser], fake_api: FakeApi
) -> None:
    a, _ = replicas
    a.sign_in("alice")
    assert a.get("/tasks").status_code == 200
    sessions = a.http.app.state.clients.signin.sessions  # type: ignore[attr-defined]
    reads: list[float] = []
    original = sessions.token_cache

    async def counted(session: Any) -> Any:
        reads.append(time.monotonic())
        return await original(session)

    sessions.token_cache = counted
    for _ in range(3):
        assert a.get("/tasks").status_code == 200
    assert reads == []  # the copy in memory still matched the store's version: no decryption
