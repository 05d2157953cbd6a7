"""Token management (article 16), against the running chain: the web's per-user token cache is
encrypted at rest and deleted at sign-out, expired tokens are replaced silently at both clients
(the web's cache and the api's on-behalf-of cache), and the web never reads a token meant for the api.
"""

from __future__ import annotations

import ast
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jwt
import pytest
from devtools.paths import repo_root
from web.session_store import record_key
from zerotrust.redact import JWT_SHAPE

from tests.chain import Chain, cache_secrets, csrf, start_chain
from tests.support.launch import LiveEmulator
from tests.support.people import ALICE_OID, Person

pytestmark = pytest.mark.guidance("token-management")

# Libraries that read JWTs. The web (a client of the api) must not need any of them.
JWT_LIBRARIES = {"jwt", "jose", "jwcrypto", "authlib", "josepy", "python_jwt", "msal.oauth2cli.oidc"}


@pytest.fixture
def chains() -> Iterator[list[Chain]]:
    started: list[Chain] = []
    yield started
    for chain in started:
        chain.stop()


def _store_bytes(state: Path) -> bytes:
    # The database and its write-ahead log: a row not yet checkpointed lives in the -wal file.
    return b"".join(p.read_bytes() for p in sorted(state.glob("sessions.sqlite3*")))


@pytest.mark.live
def test_the_token_cache_is_encrypted_at_rest_and_deleted_at_sign_out(
    live: LiveEmulator, tmp_path: Path, chains: list[Chain]
) -> None:
    chain = start_chain(live, tmp_path)
    chains.append(chain)
    alice = Person()
    chain.sign_in(alice)
    assert alice.get(f"{chain.web.base}/tasks").status_code == 200
    held = cache_secrets(chain.token_caches())  # decrypted with the web's own key
    assert held["AccessToken"] and held["RefreshToken"] and held["IdToken"]

    raw = _store_bytes(chain.web_state)
    assert not JWT_SHAPE.search(raw.decode("latin-1")), "a token in clear in the session store"
    for value in [*held["RefreshToken"], *held["AccessToken"], *held["IdToken"], "alice@contoso.test", ALICE_OID]:
        assert value.encode() not in raw

    session_id = next(c.value for c in alice.jar.jar if c.name == "__Host-session")
    assert session_id and session_id.encode() not in raw  # rows are keyed by the id's hash
    db = sqlite3.connect(chain.web_state / "sessions.sqlite3")
    try:
        assert db.execute("SELECT count(*) FROM sessions WHERE key = ?", (record_key(session_id),)).fetchone() == (1,)
        r = alice.post(f"{chain.web.base}/auth/logout", {"csrf_token": csrf(alice.get(f"{chain.web.base}/").text)})
        assert r.status_code == 302
        assert db.execute("SELECT count(*) FROM sessions WHERE key = ?", (record_key(session_id),)).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM sessions WHERE token_cache IS NOT NULL").fetchone() == (0,)
    finally:
        db.close()
    assert not chain.token_caches()
    # The old cookie, replayed, is nobody's session.
    assert alice.get(f"{chain.web.base}/tasks").status_code == 302


@pytest.mark.live
def test_short_lived_tokens_are_renewed_silently_by_the_web_and_the_api(
    emulator_factory: Callable[..., LiveEmulator], tmp_path: Path, chains: list[Chain]
) -> None:
    # Access tokens live 3 seconds and the api tolerates no clock skew: both are settings, so the expiry
    # comes within seconds (in Azure: an hour, and a minute of skew).
    emu = emulator_factory(access_token_lifetime="3")
    chain = start_chain(emu, tmp_path, api={"clock_leeway_seconds": "0"})
    chains.append(chain)
    alice = Person()
    chain.sign_in(alice, next_path="/chain")
    assert alice.get(f"{chain.web.base}/chain").status_code == 200
    first = cache_secrets(chain.token_caches())["AccessToken"][0]
    expired_at = jwt.decode(first, options={"verify_signature": False})["exp"]
    before = chain.token_requests()

    # Steady use across the expiry, as a person keeps clicking: never a sign-in page, never an error.
    while time.time() < expired_at + 1:
        page = alice.get(f"{chain.web.base}/chain")
        assert page.status_code == 200, page.text[:300]

    with chain.api.http() as http:
        r = http.get("/me", headers={"Authorization": f"Bearer {first}"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]  # really expired
    page = alice.get(f"{chain.web.base}/chain")
    assert page.status_code == 200 and page.text.count(ALICE_OID) >= 3  # the whole chain, on renewed tokens
    assert chain.token_requests() > before  # renewed with refresh tokens, not with the old ones
    assert cache_secrets(chain.token_caches())["AccessToken"][0] != first


def test_the_web_never_decodes_a_token_meant_for_the_api() -> None:
    """The api's access token is opaque to the web: only its audience may read it (its format may
    change, and a client that reads it starts trusting what it was never meant to check). What the
    web knows of the user comes from the ID token, which MSAL checks and hands over as claims."""
    web_src = repo_root() / "web" / "src" / "web"
    offenders = []
    for path in sorted(web_src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(web_src)}: imports {n}"
                for n in names
                if any(n == lib or n.startswith(f"{lib}.") for lib in JWT_LIBRARIES)
            ]
            if isinstance(node, ast.Attribute) and node.attr in ("get_unverified_claims", "decode_id_token"):
                offenders.append(f"{path.relative_to(web_src)}: calls {node.attr}")
    assert not offenders, offenders
    assert len(list(web_src.rglob("*.py"))) > 5  # the check saw the web's code
