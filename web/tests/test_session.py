"""Server-side sessions (guidance: token-management): encrypted at rest, hashed ids, timeouts; the same
contract for both stores (the SQLite file of one process, the Redis replicas share)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web.redis_store import RedisSessionStore
from web.session_store import Sealer, SessionStore, SqliteSessionStore, record_key
from web.sessions import SIGN_IN_TTL, Sessions, SignedInUser
from zerotrust.redact import JWT_SHAPE as TEXT_JWT_SHAPE

from tests.support.redis import RedisFrontStack, SignerCredential

from .conftest import SIGNER

JWT_SHAPE = re.compile(TEXT_JWT_SHAPE.pattern.encode())  # the same shape, in raw file bytes
ALICE = SignedInUser(
    oid="3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912",
    tid="9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d",
    name="Alice Adams",
    username="alice@contoso.test",
)
# Shaped like an MSAL cache holding real tokens (header.payload.signature, base64url JSON).
FAKE_AT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGkiLCJvaWQiOiIzYjRjIn0."  # pragma: allowlist secret
    "c2lnbmF0dXJlLW9mLXRoZS1pZGVudGl0eS1wcm92aWRlcg"  # pragma: allowlist secret
)
FAKE_CACHE = json.dumps(
    {
        "AccessToken": {"k": {"secret": FAKE_AT, "credential_type": "AccessToken"}},
        "RefreshToken": {"r": {"secret": "0.AAAArefresh-token-value-long-enough"}},  # pragma: allowlist secret
        "IdToken": {"i": {"secret": FAKE_AT}},
    }
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# One loop for the module: the store's connection (aiosqlite) answers on the loop that asked.
_LOOP = asyncio.new_event_loop()


def _run(coro: Any) -> Any:
    return _LOOP.run_until_complete(coro)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "web"


@dataclass
class Backend:
    store: SessionStore
    # Everything the store holds, as someone with a copy of it (a backup, a snapshot, a dump) sees it.
    raw: Callable[[], bytes]


def _sqlite(state_dir: Path) -> Backend:
    def raw() -> bytes:
        # The database, its WAL and shared-memory files: whatever SQLite wrote, committed or not.
        return b"".join(p.read_bytes() for p in sorted(state_dir.iterdir()) if p.name.startswith("sessions"))

    return Backend(_run(SqliteSessionStore.open(state_dir / "sessions.sqlite3")), raw)


def _redis(front: RedisFrontStack) -> Backend:
    def raw() -> bytes:
        with front.private() as client:
            found = [key + b"".join(k + v for k, v in client.hgetall(key).items()) for key in client.scan_iter()]
        return b"".join(found)

    return Backend(RedisSessionStore.connect(front.url, SignerCredential(SIGNER), lifetime=8 * 3600), raw)


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, state_dir: Path) -> Iterator[Backend]:
    backend = _sqlite(state_dir) if request.param == "sqlite" else _redis(request.getfixturevalue("redis_front"))
    yield backend
    _run(backend.store.close())


def _sessions(backend: Backend, state_dir: Path, clock: Clock) -> Sessions:
    sealer = Sealer.from_key_file(state_dir / "session-key")
    return Sessions(backend.store, sealer, idle_timeout=1800, absolute_timeout=8 * 3600, clock=clock)


@pytest.fixture
def sessions(store: Backend, state_dir: Path, clock: Clock) -> Sessions:
    return _sessions(store, state_dir, clock)


@pytest.fixture
def sqlite_sessions(state_dir: Path, clock: Clock) -> Iterator[Sessions]:
    backend = _sqlite(state_dir)
    yield _sessions(backend, state_dir, clock)
    _run(backend.store.close())


def test_token_cache_and_session_are_encrypted_at_rest(sessions: Any, store: Backend) -> None:
    session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    _run(sessions.save_token_cache(session, FAKE_CACHE.replace("refresh-token", "rotated-token")))
    raw = store.raw()
    assert raw, "nothing was written"
    assert not JWT_SHAPE.search(raw)
    for plaintext in (
        b"refresh-token",
        b"rotated-token",
        b"alice@contoso.test",
        b"Alice Adams",
        b"AccessToken",
        ALICE.oid.encode(),
        session.csrf_token.encode(),
        session.id.encode(),
    ):
        assert plaintext not in raw, plaintext
    # ...and it all comes back for the right session.
    assert _run(sessions.token_cache(session)) == FAKE_CACHE.replace("refresh-token", "rotated-token")
    assert _run(sessions.load(session.id)).user == ALICE


def test_key_file_and_folder_are_private(sqlite_sessions: Any, state_dir: Path) -> None:
    _run(sqlite_sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "session-key").stat().st_mode) == 0o600
    assert stat.S_IMODE((state_dir / "sessions.sqlite3").stat().st_mode) == 0o600


def test_the_key_is_generated_once_and_reused(state_dir: Path) -> None:
    a = Sealer.from_key_file(state_dir / "session-key")
    b = Sealer.from_key_file(state_dir / "session-key")
    assert b.open(a.seal(b"x", "ctx"), "ctx") == b"x"


def test_a_key_mounted_read_only_is_used_as_it_is(tmp_path: Path) -> None:
    # Key Vault's secret as Container Apps mounts it: a folder and file the app can read, never change.
    mounted = tmp_path / "secrets"
    mounted.mkdir()
    writer = Sealer(b"m" * 32)
    (mounted / "session-key").write_bytes(base64.b64encode(b"m" * 32))
    mounted.chmod(0o555)
    try:
        sealer = Sealer.from_key_file(mounted / "session-key")
        assert sealer.open(writer.seal(b"x", "ctx"), "ctx") == b"x"
        assert stat.S_IMODE(mounted.stat().st_mode) == 0o555
    finally:
        mounted.chmod(0o755)


def test_a_blob_moved_to_another_record_does_not_decrypt(state_dir: Path) -> None:
    sealer = Sealer.from_key_file(state_dir / "session-key")
    blob = sealer.seal(b"cache", "aaa|token_cache")
    assert sealer.open(blob, "bbb|token_cache") is None
    assert sealer.open(blob[:-1] + bytes([blob[-1] ^ 1]), "aaa|token_cache") is None


def test_records_are_stored_under_a_hash_of_the_session_id(sessions: Any) -> None:
    session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    assert _run(sessions.store.get(record_key(session.id))) is not None
    assert _run(sessions.store.get(session.id)) is None


def test_a_store_read_with_another_key_yields_no_session(sessions: Any, state_dir: Path, clock: Clock) -> None:
    session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    other = Sessions(sessions.store, Sealer(b"\x00" * 32), idle_timeout=1800, absolute_timeout=8 * 3600, clock=clock)
    assert _run(other.load(session.id)) is None


def test_idle_timeout(sessions: Any, clock: Clock) -> None:
    session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    clock.now += 1700
    assert _run(sessions.load(session.id)) is not None  # activity resets the idle clock
    clock.now += 1700
    assert _run(sessions.load(session.id)) is not None
    clock.now += 1801
    assert _run(sessions.load(session.id)) is None
    assert _run(sessions.store.get(session.key)) is None  # and it is gone, not just ignored


def test_absolute_timeout_even_when_active(sessions: Any, clock: Clock) -> None:
    session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    for _ in range(16):
        clock.now += 1700
        assert _run(sessions.load(session.id)) is not None
    clock.now += 1700  # 8.0 h + since sign-in
    assert _run(sessions.load(session.id)) is None


def test_start_deletes_the_sessions_it_replaces(sessions: Any) -> None:
    old = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    new = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[old.key]))
    assert new.id != old.id and new.csrf_token != old.csrf_token
    assert _run(sessions.load(old.id)) is None
    assert _run(sessions.load(new.id)) is not None


def test_end_deletes_session_and_token_cache(sessions: Any) -> None:
    session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    _run(sessions.end(session.id))
    assert _run(sessions.store.get(session.key)) is None
    assert _run(sessions.token_cache(session)) is None


def test_a_pending_sign_in_lives_in_its_sealed_cookie_and_expires(sessions: Any, store: Backend, clock: Clock) -> None:
    _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))  # the store holds something, and then no more
    before = store.raw()
    flow = {"state": "s", "code_verifier": "v", "auth_uri": "https://idp.example/authorize?x=" + "a" * 900}
    pending = _run(sessions.begin_sign_in(flow, "/tasks", "a-session-id", extra={"write": "Buy milk"}))
    assert store.raw() == before  # nothing stored for a visitor who only asked to sign in
    assert b"Buy milk" not in pending.id.encode() and "code_verifier" not in pending.id
    taken = _run(sessions.take_sign_in(pending.id))
    assert taken is not None and taken.flow == {"state": "s", "code_verifier": "v"} and taken.next == "/tasks"
    assert taken.extra == {"write": "Buy milk"} and taken.replaces == record_key("a-session-id")
    clock.now += SIGN_IN_TTL + 1
    assert _run(sessions.take_sign_in(pending.id)) is None


def _other_key(sessions: Sessions) -> Sessions:
    return Sessions(sessions.store, Sealer(b"k" * 32), idle_timeout=1, absolute_timeout=2, clock=sessions.clock)


@pytest.mark.parametrize("change", ["flip", "truncate", "other key", "garbage", "oversized"])
def test_a_sign_in_cookie_changed_or_made_up_is_nothing(sessions: Any, change: str) -> None:
    sealed = _run(sessions.begin_sign_in({"state": "s"}, "/", None)).id
    forged = {
        "flip": sealed[:40] + ("A" if sealed[40] != "A" else "B") + sealed[41:],
        "truncate": sealed[:-4],
        "other key": _run(_other_key(sessions).begin_sign_in({"state": "s"}, "/", None)).id,
        "garbage": "%%%not-base64%%%",
        "oversized": sealed * 30,
    }[change]
    assert _run(sessions.take_sign_in(forged)) is None


def test_a_sign_in_cookie_is_not_a_session_and_a_session_id_is_not_a_sign_in(sessions: Any) -> None:
    pending = _run(sessions.begin_sign_in({"state": "s"}, "/", None))
    assert _run(sessions.load(pending.id)) is None
    session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    assert _run(sessions.take_sign_in(session.id)) is None


def test_expired_records_are_purged(sqlite_sessions: Any, clock: Clock) -> None:
    stale = _run(sqlite_sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    clock.now += 8 * 3600 + 1
    _run(sqlite_sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    assert _run(sqlite_sessions.store.get(stale.key)) is None


def test_redis_drops_each_record_at_the_absolute_lifetime_by_itself(
    redis_front: RedisFrontStack, state_dir: Path
) -> None:
    backend, client = _redis(redis_front), redis_front.private()
    sessions = _sessions(backend, state_dir, Clock())
    try:
        session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
        assert 8 * 3600 - 5 < client.ttl(f"web:session:{session.key}") <= 8 * 3600
        # Use and a refreshed token cache don't extend it: the absolute timeout holds however active.
        client.expire(f"web:session:{session.key}", 100)
        _run(backend.store.update(session.key, last_seen=time.time(), token_cache=b"sealed"))
        assert 0 < client.ttl(f"web:session:{session.key}") <= 100
        assert _run(backend.store.purge(idle_before=time.time(), created_before=time.time())) == 0
    finally:
        _run(backend.store.close())
        client.close()


def test_the_sqlite_read_of_each_request_stays_on_the_event_loop_and_sees_every_write(sqlite_sessions: Any) -> None:
    store = sqlite_sessions.store

    async def not_on_the_thread(*_args: Any) -> Any:
        raise AssertionError("the per-request read went to aiosqlite's thread")

    session = _run(sqlite_sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    thread_read, store._db.execute_fetchall = store._db.execute_fetchall, not_on_the_thread
    try:
        assert _run(store.get(session.key)).key == session.key
        # What the writer thread committed is what the next read sees: an ended session is gone at once.
        _run(sqlite_sessions.end(session.id))
        assert _run(store.get(session.key)) is None
    finally:
        store._db.execute_fetchall = thread_read


def test_a_busy_sqlite_file_is_read_on_the_thread_instead(sqlite_sessions: Any) -> None:
    class Busy:
        def execute(self, *_args: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

        def close(self) -> None:
            pass

    store = sqlite_sessions.store
    session = _run(sqlite_sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    reader, store._reader = store._reader, Busy()
    try:
        assert _run(store.get(session.key)).key == session.key
        assert _run(store.get("no-such-key")) is None
    finally:
        store._reader = reader


def test_a_record_ended_elsewhere_is_not_brought_back_by_a_late_write(sessions: Any) -> None:
    # A replica still finishing a request (a token refreshed, a touch) after another one signed the person out.
    session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    _run(sessions.end(session.id))
    _run(sessions.save_token_cache(session, FAKE_CACHE))
    _run(sessions.store.update(session.key, last_seen=time.time()))
    assert _run(sessions.store.get(session.key)) is None


def test_a_record_put_again_keeps_nothing_of_the_one_it_replaces(sessions: Any) -> None:
    session = _run(sessions.start(ALICE, FAKE_CACHE, replaces=[]))
    record = _run(sessions.store.get(session.key))
    _run(sessions.store.put(dataclasses.replace(record, token_cache=None)))
    assert _run(sessions.store.get(session.key)).token_cache is None
    assert _run(sessions.load(session.id)) is not None


# -- the same timeouts, as a person meets them over HTTP ----------------------------------------


def _shift_clock(browser: Any, seconds: float) -> None:
    """The session store's clock, `seconds` past the real one (the same offset however often it is set)."""
    sessions = browser.http.app.state.clients.signin.sessions
    sessions.clock = lambda: time.time() + seconds


def test_an_idle_session_sends_the_person_to_sign_in_again(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    assert browser.get("/tasks").status_code == 200
    _shift_clock(browser, browser.settings.session_idle_timeout + 1)
    r = browser.get("/tasks")
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"
    # Only the first visit reached the api; the expired session was turned away before any call.
    assert [(c[0], c[1]) for c in fake_api.calls].count(("GET", "/tasks")) == 1


def test_a_session_past_its_absolute_lifetime_ends_however_active(browser: Any) -> None:
    browser.sign_in("alice")
    step = browser.settings.session_idle_timeout - 60
    elapsed = 0
    while elapsed + step < browser.settings.session_absolute_timeout:
        elapsed += step
        _shift_clock(browser, elapsed)
        assert browser.get("/tasks").status_code == 200, elapsed  # active all along
    _shift_clock(browser, browser.settings.session_absolute_timeout + 1)
    assert browser.get("/tasks").status_code == 302
