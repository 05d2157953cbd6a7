"""Continuous access evaluation through the chain, over HTTP against the emulator.

A user an administrator disables loses access through the api at once, even with a valid token and the
api's on-behalf-of tokens for him cached: the identity provider tells the app over SCIM (as Entra's
provisioning service does), and downstream-api refuses him where the data is. A user whose sessions are
revoked gets, through the api, a claims challenge when the token service or Graph (a CAE resource)
demands a fresh sign-in, if the token declares cp1; a plain 401 if it doesn't.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from zerotrust.cae import challenged_claims

from tests.authz.chain import ALICE, BOB, DAVE, Chain, Person
from tests.support.launch import LiveEmulator, start_emulator

pytestmark = [pytest.mark.live, pytest.mark.guidance("secure-with-cae")]


def _challenged(answer: httpx.Response, what: str, revoked_at: float) -> None:
    """The api's own claims challenge, asking for a token issued after the revocation."""
    assert answer.status_code == 401, (what, answer.text[:300])
    header = answer.headers["www-authenticate"]
    assert header.startswith('Bearer realm="api", error="insufficient_claims"'), (what, header)
    claims = json.loads(challenged_claims(header) or "null")
    assert int(claims["access_token"]["nbf"]["value"]) >= int(revoked_at), what


def _plain_401(answer: httpx.Response, what: str) -> None:
    assert answer.status_code == 401, (what, answer.text[:300])
    header = answer.headers["www-authenticate"]
    assert 'error="invalid_token"' in header and "claims=" not in header, (what, header)


def _revoke(chain: Chain, person: Person) -> float:
    before = time.time()
    chain.emulator.admin("users/revoke-sessions", upn=person.upn)
    return before


def _token_requests(chain: Chain) -> int:
    return chain.emulator.stats()["token_requests"]


def test_a_disabled_user_with_nothing_cached_is_refused_by_the_exchange_itself(chain: Chain) -> None:
    """dave (no other test here calls the api for him first) holds a valid token and is disabled before his first
    call: the api's on-behalf-of exchange is refused by the identity provider, and so is he."""
    dave = {"Authorization": f"Bearer {chain.signed_in(DAVE, capable=False)}"}
    chain.emulator.admin("users/disable", upn=DAVE.upn)
    try:
        with chain.api.http() as http:
            for method, path in (("GET", "/tasks"), ("POST", "/tasks")):
                before = _token_requests(chain)
                answer = http.request(method, path, json={"title": "x"} if method == "POST" else None, headers=dave)
                assert _token_requests(chain) > before, "the api used a cached token: this test proves nothing"
                assert answer.status_code == 401, (method, answer.text[:200])
                assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    finally:
        chain.emulator.admin("users/enable", upn=DAVE.upn)


@pytest.mark.parametrize(("cut_off", "undo"), [("disable", "enable"), ("delete", "restore")])
def test_a_disabled_or_deleted_user_is_refused_every_read_and_write_even_with_cached_on_behalf_of_tokens(
    chain: Chain, cut_off: str, undo: str
) -> None:
    """Deleting is a soft delete, as in Entra: provisioning deactivates the user in the app, data kept."""
    bob = chain.signed_in(BOB, capable=False)
    headers = {"Authorization": f"Bearer {bob}"}
    with chain.api.http() as http:
        # Bob works: the api exchanges his token for downstream-api's (read and write) and caches both.
        assert http.get("/tasks", headers=headers).status_code == 200
        created = http.post("/tasks", json={"title": "before"}, headers=headers)
        assert created.status_code == 201
        task = created.json()["id"]

        told = chain.emulator.admin(f"users/{cut_off}", upn="bob@contoso.test")
        assert "deactivated in the app" in told["done"]

        # His token is still valid and the api's cached tokens for him too: refused all the same.
        attempts = {
            "GET /tasks": http.get("/tasks", headers=headers),
            "POST /tasks": http.post("/tasks", json={"title": "after"}, headers=headers),
            f"GET /tasks/{task}": http.get(f"/tasks/{task}", headers=headers),
            f"PATCH /tasks/{task}": http.patch(f"/tasks/{task}", json={"done": True}, headers=headers),
            f"DELETE /tasks/{task}": http.delete(f"/tasks/{task}", headers=headers),
            "GET /tasks/shared": http.get("/tasks/shared", headers=headers),
            "GET /me/groups": http.get("/me/groups", headers=headers),
        }
        for what, answer in attempts.items():
            assert answer.status_code in (401, 403), (what, answer.status_code, answer.text[:200])
            if answer.status_code == 403:
                assert answer.json()["error"] == "account_deactivated", what
        # /me asks Graph too, which knows him no more: his sign-in is refused outright.
        assert http.get("/me", headers=headers).status_code == 401

        chain.emulator.admin(f"users/{undo}", upn="bob@contoso.test")
        # Back again (and the app told again): a fresh token of his works as before, his task still there.
        again = {"Authorization": f"Bearer {chain.signed_in(BOB, capable=False)}"}
        assert http.get("/tasks", headers=again).status_code == 200
        assert http.get(f"/tasks/{task}", headers=again).status_code == 200


def test_a_cp1_caller_whose_sessions_are_revoked_gets_the_apis_claims_challenge_then_works_again(
    chain: Chain,
) -> None:
    token = chain.signed_in(ALICE, capable=True)
    headers = {"Authorization": f"Bearer {token}"}
    with chain.api.http() as http:
        me = http.get("/me", headers=headers)
        assert me.status_code == 200 and me.json()["graph"]["displayName"] == ALICE.name
        assert http.get("/tasks", headers=headers).status_code == 200  # the api now holds alice's tokens

        revoked_at = _revoke(chain, ALICE)
        # Her token is still valid for 60 minutes; Graph re-evaluates it, and the token service refuses
        # to exchange it: every answer is the api's own challenge, cached exchanges or not.
        _challenged(http.get("/me", headers=headers), "GET /me (Graph)", revoked_at)
        _challenged(http.get("/tasks", headers=headers), "GET /tasks (on-behalf-of)", revoked_at)
        _challenged(http.post("/tasks", json={"title": "after"}, headers=headers), "POST /tasks", revoked_at)

        # Signed in again: a token issued after the revocation satisfies the claims.
        fresh = chain.signed_in(ALICE, capable=True)
        again = http.get("/me", headers={"Authorization": f"Bearer {fresh}"})
        assert again.status_code == 200, again.text


def test_a_caller_without_cp1_gets_a_plain_401_and_no_claims(chain: Chain) -> None:
    token = chain.signed_in(ALICE, capable=False)
    headers = {"Authorization": f"Bearer {token}"}
    with chain.api.http() as http:
        assert http.get("/me", headers=headers).status_code == 200
        _revoke(chain, ALICE)
        _plain_401(http.get("/me", headers=headers), "GET /me")
        _plain_401(http.get("/tasks", headers=headers), "GET /tasks")


def test_graph_demanding_claims_of_downstream_api_reaches_the_caller_as_the_apis_challenge(chain: Chain) -> None:
    # dave's groups overflow the token: downstream-api asks Graph for them, on his behalf.
    token = chain.signed_in(DAVE, capable=True)
    headers = {"Authorization": f"Bearer {token}"}
    with chain.api.http() as http:
        assert http.get("/tasks", headers=headers).status_code == 200  # the api's token for downstream, cached
        revoked_at = _revoke(chain, DAVE)
        # The api's cached token gets downstream-api to look up his groups; the token service refuses
        # downstream-api's exchange for Graph with claims; downstream-api challenges the api, which
        # answers dave with a challenge of its own.
        _challenged(http.get("/tasks/shared", headers=headers), "GET /tasks/shared", revoked_at)


def test_without_a_provisioned_app_the_emulator_says_so(tmp_path: Path, live: LiveEmulator) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "tls").symlink_to(live.local_dir / "tls")
    emulator = start_emulator(local)
    try:
        told = emulator.admin("users/disable", upn="bob@contoso.test")
        assert "no app is configured for provisioning" in told["done"]
        page = emulator.administrator.request("GET", "/admin")
        assert page.status_code == 200
    finally:
        emulator.stop()
