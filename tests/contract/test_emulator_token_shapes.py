"""Tokens of every shape handed to the emulator, validly signed with its own key: never a 500.

An attack run found an on-behalf-of assertion whose `aud` is a list answered with a server error. A signature
proves who signed, not that the claims have their types; each token below is signed by the emulator's own key
(tests.support.tokens.Issuer reads it from the emulator's state) and wrong in one claim's shape, and each gets
Entra's answer to a malformed token: `invalid_grant` (on-behalf-of), `invalid_client` (a client assertion)
or Graph's 401, in Entra's error format.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from devtools.paths import repo_root
from identity_emulator.manifest import load_directory

from tests.support.launch import LiveEmulator
from tests.support.tokens import Issuer, apis_at

from .helpers import downstream_scope
from .test_emulator_errors import ASSERTION_TYPE, TOKEN_EXCHANGE_AUDIENCE, assert_entra_error, obo, post_token, tid

MALFORMED = 50027  # AADSTS50027: JWT token is invalid or malformed.
NO_USER = 5000224  # on-behalf-of needs a user's token

# (claim, value) -> the AADSTS code answered; None as the value: the claim left out.
ASSERTION_SHAPES: list[tuple[str, Any, int]] = [
    ("aud", ["{api}"], MALFORMED),
    ("aud", ["{api}", "{api}"], MALFORMED),
    ("aud", [], MALFORMED),
    ("aud", [["{api}"]], MALFORMED),
    ("aud", {"{api}": True}, MALFORMED),
    ("aud", 5, MALFORMED),
    ("aud", True, MALFORMED),
    ("aud", None, MALFORMED),
    ("iss", 5, MALFORMED),
    ("iss", ["{iss}"], MALFORMED),
    ("iss", {"value": "{iss}"}, MALFORMED),
    ("iss", None, MALFORMED),
    ("tid", 5, MALFORMED),
    ("tid", ["{tid}"], MALFORMED),
    ("tid", None, MALFORMED),
    ("oid", 5, MALFORMED),
    ("oid", ["x"], MALFORMED),
    ("oid", None, NO_USER),
    ("scp", ["Tasks.Read"], MALFORMED),
    ("scp", 1, MALFORMED),
    ("scp", {"Tasks.Read": True}, MALFORMED),
    ("scp", None, NO_USER),
    ("idtyp", ["user"], MALFORMED),
    ("uti", 5, MALFORMED),
    ("uti", {"a": 1}, MALFORMED),
    ("acrs", "c1", MALFORMED),
    ("acrs", 1, MALFORMED),
    ("acrs", [1], MALFORMED),
    ("acrs", {"c1": True}, MALFORMED),
    ("xms_cc", "cp1", MALFORMED),
    ("xms_cc", [{"cp1": 1}], MALFORMED),
    ("roles", "Tasks.Admin", MALFORMED),
    ("iat", "{now}", MALFORMED),
    ("iat", [1], MALFORMED),
    ("iat", True, MALFORMED),
    ("nbf", "{now}", MALFORMED),
    ("exp", "{later}", MALFORMED),
    ("exp", [1], MALFORMED),
    ("exp", None, MALFORMED),
]


def _fill(value: Any, names: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return names[value[1:-1]] if value.startswith("{") and value.endswith("}") else value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {_fill(k, names): _fill(v, names) for k, v in value.items()}
    return value


def _names(live: LiveEmulator, api_id: str) -> dict[str, Any]:
    now = int(time.time())
    return {"api": api_id, "iss": Issuer(live).issuer(), "tid": tid(live), "now": str(now), "later": str(now + 3600)}


def _shaped(issuer: Issuer, claims: dict[str, Any], claim: str, value: Any, names: dict[str, Any]) -> str:
    if value is None:
        claims.pop(claim, None)
    else:
        claims[claim] = _fill(value, names)
    return raw_signed(issuer, claims)


def raw_signed(issuer: Issuer, claims: dict[str, Any] | bytes) -> str:
    """Signed with the emulator's current key as they are: PyJWT's encoder would refuse some of these shapes."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    kid = issuer.kids()[-1]
    return jwt.api_jws.encode(payload, issuer.private_key(kid), algorithm="RS256", headers={"kid": kid, "typ": "JWT"})


@pytest.mark.parametrize(("claim", "value", "code"), ASSERTION_SHAPES, ids=lambda v: str(v)[:40])
def test_an_obo_assertion_of_any_shape_is_a_clear_invalid_grant(
    live: LiveEmulator, claim: str, value: Any, code: int | None
) -> None:
    issuer = Issuer(live)
    api = apis_at("https://api.invalid", "https://downstream.invalid")["api"]
    claims = issuer.claims(api, scp="Tasks.Read")
    r = obo(live, _shaped(issuer, claims, claim, value, _names(live, api.app_id)))
    assert_entra_error(r, 400, "invalid_grant", code if code is not None else MALFORMED)


def test_the_well_formed_assertion_these_are_made_from_is_exchanged(live: LiveEmulator) -> None:
    # The positive control: the same token, shaped as the emulator issues it, is exchanged.
    issuer = Issuer(live)
    api = apis_at("https://api.invalid", "https://downstream.invalid")["api"]
    r = obo(live, issuer.sign(issuer.claims(api, scp="Tasks.Read")))
    assert r.status_code == 200, r.text


def test_a_deeply_nested_assertion_is_a_clear_invalid_grant(live: LiveEmulator) -> None:
    # Deeper than Python's JSON decoder recurses: the payload is written by hand, then signed as it is.
    issuer = Issuer(live)
    api = apis_at("https://api.invalid", "https://downstream.invalid")["api"]
    claims = json.dumps(issuer.claims(api, scp="Tasks.Read"))
    payload = (claims[:-1] + ', "deep": ' + "[" * 5000 + "]" * 5000 + "}").encode()
    assert_entra_error(obo(live, raw_signed(issuer, payload)), 400, "invalid_grant", MALFORMED)


def _mi_claims(live: LiveEmulator) -> dict[str, Any]:
    """The api's managed identity token for token exchange, as the emulator's /msi/token mints it."""
    now, object_id = int(time.time()), identity_object_id("api")
    return {
        "aud": TOKEN_EXCHANGE_AUDIENCE,
        "iss": Issuer(live).issuer(),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "tid": tid(live),
        "oid": object_id,
        "sub": object_id,
        "idtyp": "app",
        "uti": "u1",
    }


def identity_object_id(name: str) -> str:
    root = repo_root()
    directory = load_directory(
        root / "infra" / "registrations.yaml", root / "identity-emulator" / "demo" / "directory.yaml"
    )
    return directory.managed_identities[name].object_id


def _client_credentials(live: LiveEmulator, assertion: str) -> httpx.Response:
    return post_token(
        live,
        {
            "grant_type": "client_credentials",
            "scope": downstream_scope(live, ".default"),
            # The api's app-only registration: the one with app roles downstream, federated to the api's identity.
            "client_id": live.app_id("api-app-only"),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("aud", [["api://AzureADTokenExchange"]]),
        ("aud", [{"a": 1}]),
        ("aud", {"api://AzureADTokenExchange": 1}),
        ("aud", 5),
        ("aud", []),
        ("iss", ["x"]),
        ("tid", 5),
        ("iat", "1"),
        ("roles", "x"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_a_federated_client_assertion_of_any_shape_is_a_clear_invalid_client(
    live: LiveEmulator, claim: str, value: Any
) -> None:
    issuer = Issuer(live)
    claims = {**_mi_claims(live), claim: value}
    assert_entra_error(_client_credentials(live, raw_signed(issuer, claims)), 401, "invalid_client", MALFORMED)


def test_the_well_formed_client_assertion_these_are_made_from_is_accepted(live: LiveEmulator) -> None:
    r = _client_credentials(live, Issuer(live).sign(_mi_claims(live)))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("claim", "value"),
    [("aud", [["https://graph.microsoft.com"]]), ("scp", ["User.Read"]), ("oid", [1]), ("tid", {}), ("xms_cc", "cp1")],
    ids=lambda v: str(v)[:40],
)
def test_a_graph_token_of_any_shape_is_a_clear_401(live: LiveEmulator, claim: str, value: Any) -> None:
    issuer = Issuer(live)
    api = apis_at("https://api.invalid", "https://downstream.invalid")["api"]
    claims = {**issuer.claims(api, scp="User.Read GroupMember.Read.All"), "aud": "https://graph.microsoft.com"}
    claims[claim] = value
    with live.http() as client:
        r = client.get(f"{live.base}/v1.0/me", headers={"Authorization": f"Bearer {raw_signed(issuer, claims)}"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


@pytest.mark.parametrize("wids", [[{"role": 1}], "62e90394-69f5-4237-9190-012177145e10", 5, [["x"]]], ids=repr)
def test_an_admin_views_token_of_any_shape_is_a_clear_401(live: LiveEmulator, wids: Any) -> None:
    # The demo administrator's own Graph token, its directory roles (`wids`) reshaped and signed again.
    claims = jwt.decode(live.administrator.token(), options={"verify_signature": False})
    issuer = Issuer(live)

    def stats(token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return httpx.get(f"{live.front}/admin/stats", headers=headers, timeout=10)

    assert stats(raw_signed(issuer, claims)).status_code == 200  # the control: re-signed as it was
    r = stats(raw_signed(issuer, {**claims, "wids": wids}))
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
