"""Two web processes sharing one Redis, over HTTP against real processes: a person signs in through one
and goes on with the other (pages, a task added, sign-out); tokens one process drops are not used from
the other's memory; `make run WEB_REPLICAS=2` puts both behind one port; an unreachable Redis, or one that
refuses the web's credential, stops the web app with one clear line. Each web process logs in to Redis with
its managed identity's token from the emulator, through the token-checking front (devtools.redis_front).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools.ports import free_port
from devtools.redis_server import RedisServer

from tests.chain import Chain, csrf, start_chain
from tests.support.launch import (
    MAKE_RUN_STACK_OFFSET,
    LiveEmulator,
    LiveService,
    ready,
    spawn,
    start_stack,
    web_settings,
)
from tests.support.people import Person
from tests.support.redis import WEB_OBJECT_ID, RedisFrontStack, start_redis_front

pytestmark = pytest.mark.live


@pytest.fixture
def person() -> Iterator[Person]:
    p = Person()
    yield p
    p.http.close()


def _two_webs(emulator: LiveEmulator, tmp_path: Path, store: str) -> tuple[Chain, LiveService]:
    """The chain with web A, and web B beside it: same api, same Redis, same sealing key (state folder)."""
    chain = start_chain(emulator, tmp_path, web={"session_store": store})
    try:
        settings = {
            **web_settings(emulator, free_port(), chain.web_state),
            "api_url": str(chain.api.base),
            "session_store": store,
        }
        b = spawn("web", "WEB", settings, emulator=emulator, log_dir=tmp_path / "logs", identity="web", https=False)
        ready(b)
    except BaseException:
        chain.stop()
        raise
    chain.services.insert(0, b)  # stopped with the chain; chain.web stays A
    return chain, b


def test_a_person_signs_in_on_one_web_process_and_goes_on_with_the_other(
    live: LiveEmulator, redis_front: RedisFrontStack, tmp_path: Path, person: Person
) -> None:
    chain, b = _two_webs(live, tmp_path, redis_front.url)
    try:
        a = chain.web.base
        chain.sign_in(person)  # through A
        # Cookies belong to the host, not the port: the browser sends A's session cookie to B as well.
        page = person.get(f"{b.base}/tasks")
        assert page.status_code == 200 and "Alice Adams" in page.text, page.text[:300]
        title = "Added through B"
        r = person.post(f"{b.base}/tasks", {"csrf_token": csrf(page.text), "title": title})
        r = person.consent_if_asked(r)  # the first write may ask for the write scope, answered to B
        assert r.status_code == 303 and r.headers["location"] == "/tasks", r.text[:300]
        assert title in person.get(f"{a}/tasks").text  # A shows it: one session, one user, one api

        r = person.post(f"{b.base}/auth/logout", {"csrf_token": csrf(person.get(f"{b.base}/").text)})
        assert r.status_code == 302
        # A's very next request finds the session gone (A's memory held its token cache a moment ago).
        r = person.get(f"{a}/tasks")
        assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"
        with redis_front.private() as client:
            assert client.dbsize() == 0  # nothing of the session left in the store
        # Each process logged in to it with the web's managed identity token, through the front.
        assert redis_front.front.counters.snapshot()["accepted"] >= 2
    finally:
        chain.stop()


@pytest.mark.guidance("token-management")
def test_tokens_one_web_process_dropped_are_not_used_from_the_others_memory(
    fresh_emulator: LiveEmulator, redis_server: RedisServer, tmp_path: Path, person: Person
) -> None:
    # This emulator's tokens, checked against its own key set and issuer.
    front = start_redis_front(redis_server, fresh_emulator.tls, fresh_emulator.authority())
    front.clear()
    try:
        chain, b = _two_webs(fresh_emulator, tmp_path, front.url)
    except BaseException:
        front.stop()
        raise
    try:
        a = chain.web.base
        chain.sign_in(person)
        assert person.get(f"{a}/tasks").status_code == 200 and person.get(f"{b.base}/tasks").status_code == 200

        # Alice's sessions are revoked (a critical event): Graph challenges her tokens, B drops them all.
        fresh_emulator.admin("users/revoke-sessions", upn="alice@contoso.test")
        r = person.get(f"{b.base}/tasks")
        assert r.status_code in (302, 303) and r.headers["location"].startswith(fresh_emulator.front), r.text[:300]

        graph = _stats(fresh_emulator)["graph_requests"]
        r = person.get(f"{a}/tasks")
        assert r.status_code != 200
        # A read the emptied cache from the store instead of its own copy: no dropped token was sent anywhere.
        assert _stats(fresh_emulator)["graph_requests"] == graph
    finally:
        chain.stop()
        front.stop()


def _stats(emulator: LiveEmulator) -> dict[str, int]:
    return emulator.stats()


def test_make_run_web_replicas_puts_two_processes_sharing_sessions_behind_one_port(tmp_path: Path) -> None:
    offset = MAKE_RUN_STACK_OFFSET  # the make run test's block: its stack is gone when it ends, as this one's is
    command = ["make", "--no-print-directory", "-s", "run", f"PORT_OFFSET={offset}", "WEB_REPLICAS=2"]
    stack = start_stack(tmp_path, offset, command)
    person = Person()
    try:
        log = stack.log_path.read_text()
        assert "devtools.webfarm" in log and "session store" in log
        assert f"rediss://{WEB_OBJECT_ID}@localhost:{8380 + offset}/0" in log and "devtools.redis_front" in log
        assert (tmp_path / "redis").stat().st_mode & 0o077 == 0
        assert (tmp_path / "redis" / "front-password").stat().st_mode & 0o077 == 0
        r = person.get(f"{stack.web}/auth/login?next=/tasks")
        action, fields = person.sign_in_at_emulator(r.headers["location"], stack.info["demo_password"])
        r = person.post(action, fields)
        assert r.status_code == 303 and r.headers["location"] == "/tasks", r.text[:300]
        for _ in range(4):  # through the front: each request to the next process
            assert "Alice Adams" in person.get(f"{stack.web}/tasks").text
        for port in (8010 + offset, 8011 + offset):  # and each process by itself
            page = person.get(f"http://localhost:{port}/tasks")
            assert page.status_code == 200 and "Alice Adams" in page.text
    finally:
        person.http.close()
        stack.process.send_signal(signal.SIGTERM)
        stack.process.wait(30)


def _web_that_stops(live: LiveEmulator, tmp_path: Path, store: str, identity: str) -> str:
    """A web process on `store` with `identity`'s managed identity: it must stop (exit 2); its output."""
    settings = {**web_settings(live, free_port(), tmp_path / "web"), "session_store": store}
    web = spawn("web", "WEB", settings, emulator=live, log_dir=tmp_path, identity=identity, https=False)
    try:
        assert web.process.wait(30) == 2
    except subprocess.TimeoutExpired:
        web.stop()
        raise
    out = web.log_path.read_text()
    assert "Traceback" not in out
    return out


def test_an_unreachable_redis_stops_the_web_app_with_one_clear_line(live: LiveEmulator, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    out = _web_that_stops(live, tmp_path, f"rediss://{WEB_OBJECT_ID}@localhost:{port}/0", "web")
    assert f"web: WEB_SESSION_STORE: Redis at localhost:{port} is not usable" in out, out


@pytest.mark.guidance("identity-non-user-applications")
def test_a_web_process_with_another_identity_is_refused_by_redis(
    live: LiveEmulator, redis_front: RedisFrontStack, tmp_path: Path
) -> None:
    # The api's managed identity, logging in as the web's object id: its token's oid is not the user's.
    out = _web_that_stops(live, tmp_path, redis_front.url, "api")
    assert f"web: WEB_SESSION_STORE: Redis at localhost:{redis_front.front.port} is not usable" in out, out
    assert "invalid username-password pair or user is disabled" in out, out
    assert redis_front.front.counters.snapshot() == {"accepted": 0, "refused": 1, "distinct_tokens": 0}
