"""On-behalf-of caching: a token is reused only for the same incoming token and scopes, never across users,
and renewed before it expires; each user's MSAL app is made at that user's own tenant.

MSAL itself (the token endpoint, its own cache) is exercised end to end by the live tests; what is tested
here is this project's layer around it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from zerotrust.credentials import ConfidentialApps
from zerotrust.onbehalf import REFRESH_MARGIN_SECONDS, OnBehalfOf
from zerotrust.tokens import Principal

CONTOSO, FABRIKAM = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d", "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"


def _user(oid: str, tid: str = CONTOSO) -> Principal:
    return Principal.model_validate(
        {
            "tid": tid,
            "oid": oid,
            "sub": f"sub-{oid}",
            "aud": "api",
            "iss": f"https://login.example/{tid}/v2.0",
            "azp": "web",
            "scp": "Tasks.Read",
            "ver": "2.0",
            "exp": 2_000_000_000,
        }
    )


ALICE, BOB, CAROL = _user("alice-oid"), _user("bob-oid"), _user("carol-oid", FABRIKAM)


@pytest.fixture
def obo(monkeypatch: pytest.MonkeyPatch) -> tuple[OnBehalfOf, list[tuple[str, str, tuple[str, ...]]]]:
    client = OnBehalfOf(ConfidentialApps("api-client-id", "https://login.example", lambda: "assertion"))
    asked: list[tuple[str, str, tuple[str, ...]]] = []
    lifetime = {"seconds": 3600.0}

    def acquire(
        principal: Principal, _lineage: str, assertion: str, scopes: list[str], claims: str | None
    ) -> tuple[str, float]:
        asked.append((principal.oid, assertion if claims is None else f"{assertion}+claims", tuple(scopes)))
        return f"downstream-token-{len(asked)}-for-{principal.oid}", time.time() + lifetime["seconds"]

    monkeypatch.setattr(client, "_acquire", acquire)
    client.lifetime = lifetime  # type: ignore[attr-defined]
    return client, asked


def _token(client: OnBehalfOf, user: Principal, assertion: str, scopes: list[str]) -> str:
    return asyncio.run(client.token(user, assertion, scopes))


def test_the_same_incoming_token_and_scopes_reuse_the_result(obo: Any) -> None:
    client, asked = obo
    first = _token(client, ALICE, "alices-token", ["Records.Read"])
    assert _token(client, ALICE, "alices-token", ["Records.Read"]) == first
    assert len(asked) == 1


def test_another_user_never_gets_a_token_made_for_someone_else(obo: Any) -> None:
    client, asked = obo
    alices = _token(client, ALICE, "alices-token", ["Records.Read"])
    bobs = _token(client, BOB, "bobs-token", ["Records.Read"])
    assert alices != bobs and bobs.endswith("bob-oid") and len(asked) == 2


def test_other_scopes_are_another_exchange(obo: Any) -> None:
    client, asked = obo
    read = _token(client, ALICE, "alices-token", ["Records.Read"])
    write = _token(client, ALICE, "alices-token", ["Records.ReadWrite"])
    assert read != write and [a[2] for a in asked] == [("Records.Read",), ("Records.ReadWrite",)]


def test_a_token_close_to_expiry_is_renewed_not_reused(obo: Any) -> None:
    client, asked = obo
    client.lifetime["seconds"] = REFRESH_MARGIN_SECONDS - 1  # would expire within the margin
    first = _token(client, ALICE, "alices-token", ["Records.Read"])
    assert _token(client, ALICE, "alices-token", ["Records.Read"]) != first
    assert len(asked) == 2


def test_each_users_app_is_made_at_their_own_tenant_and_kept_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    client = OnBehalfOf(ConfidentialApps("api-client-id", "https://login.example", lambda: "assertion"))
    made: list[str] = []
    monkeypatch.setattr(client._msal, "new", lambda tenant: made.append(tenant) or object())
    alices = client._app_for(ALICE, "t1")
    assert client._app_for(ALICE, "t1") is alices  # one app (and token cache) per user and incoming token, reused
    assert client._app_for(BOB, "t1") is not alices
    client._app_for(CAROL, "t1")
    assert made == [CONTOSO, CONTOSO, FABRIKAM]
    assert client._msal.authority_host == "https://login.example"


def test_the_per_user_apps_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("zerotrust.onbehalf.MAX_USERS", 3)
    client = OnBehalfOf(ConfidentialApps("api-client-id", "https://login.example", lambda: "assertion"))
    monkeypatch.setattr(client._msal, "new", lambda tenant: object())
    first = client._app_for(_user("u0"), "t")
    for n in range(1, 5):
        client._app_for(_user(f"u{n}"), "t")
    assert len(client._apps) == 3 and client._app_for(_user("u0"), "t") is not first  # the oldest went first


def test_a_claims_challenge_skips_the_cached_result_and_forget_drops_only_that_users(obo: Any) -> None:
    client, asked = obo
    alices = _token(client, ALICE, "alices-token", ["Records.Read"])
    bobs = _token(client, BOB, "bobs-token", ["Records.Read"])
    with_claims = asyncio.run(client.token(ALICE, "alices-token", ["Records.Read"], claims='{"access_token":{}}'))
    assert with_claims != alices and asked[-1][1] == "alices-token+claims"
    client.forget(ALICE)
    assert _token(client, ALICE, "alices-token", ["Records.Read"]) not in (alices, with_claims)
    assert _token(client, BOB, "bobs-token", ["Records.Read"]) == bobs  # bob's results stay
    assert len(asked) == 4


class _Msal:
    """An MSAL app's two calls as the exchange uses them: its cache (silent) and the token endpoint (OBO)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def get_accounts(self) -> list[dict[str, str]]:
        return [{"home_account_id": "alice"}] if self.tokens else []

    def acquire_token_silent(self, scopes: list[str], account: Any) -> dict[str, Any]:
        return {"access_token": self.tokens[-1], "expires_in": 3600}

    def acquire_token_on_behalf_of(self, assertion: str, scopes: list[str], claims_challenge: Any) -> dict[str, Any]:
        self.tokens.append(f"on-behalf-of-{assertion}")
        return {"access_token": self.tokens[-1], "expires_in": 3600}


def test_a_later_sign_ins_token_is_exchanged_anew_never_served_an_earlier_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # zt: secure-with-cae
    # alice's session was revoked and she signed in again: the web sends a new token. What was got on behalf of
    # the old one (still unexpired) must not go on downstream, or Graph refuses it once more after the new sign-in.
    client = OnBehalfOf(ConfidentialApps("api-client-id", "https://login.example", lambda: "assertion"))
    monkeypatch.setattr(client._msal, "new", lambda tenant: _Msal())
    before = _token(client, ALICE, "before-the-revocation", ["Records.Read"])
    after = _token(client, ALICE, "after-signing-in-again", ["Records.Read"])
    assert (before, after) == ("on-behalf-of-before-the-revocation", "on-behalf-of-after-signing-in-again")
    assert client.token_endpoint_calls == 2
