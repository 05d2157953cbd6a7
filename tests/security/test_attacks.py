"""Token validation at both APIs, attacked over real HTTPS (security catalog, section (a)).

Three groups, every case asserting the exact status and `WWW-Authenticate`:
- the shared attack catalogue (`devtools.attacks`), as `make scorecard` and the attack lab run it;
- tokens signed with the provider's real key that are wrong in exactly one way (tests/support/tokens.py);
- header-supplied key URLs (`jku`, `x5u`) pointing at a listener here that must never be called.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from devtools.attacks import ATTACKS, Attack, AttackContext
from devtools.firing import fire
from zerotrust.tokens import MAX_TOKEN_BYTES

from tests.support.launch import RunningStack
from tests.support.tokens import (
    ENTRA_HOST,
    GRAPH_APP_ID,
    LEEWAY_SECONDS,
    Api,
    Issuer,
    app_id,
    build_access_token,
    build_access_token_expired,
    build_access_token_for_audience,
    build_access_token_from_client,
    build_access_token_issued_in_future,
    build_access_token_issuer,
    build_access_token_not_yet_valid,
    build_access_token_of_length,
    build_access_token_other_host,
    build_access_token_other_tenant,
    build_access_token_v1,
    build_access_token_with_alg,
    build_access_token_with_scopes,
    build_access_token_without,
    build_app_only_token,
    build_id_token,
)

pytestmark = pytest.mark.guidance("protect-api")

TIERS = ["api", "downstream-api"]

# What each refusal says (zerotrust tokens.py and protect.py): short, and the same for every API.
INVALID = "The access token is invalid."
MALFORMED = "The access token is malformed."
EXPIRED = "The access token has expired."
NOT_YET = "The access token is not valid yet."
AUDIENCE = "The access token is not meant for this API."
TENANT = "The token's tenant is not allowed."
ISSUER = "The token's issuer is not trusted."
VERSION = "Only v2.0 access tokens are accepted."
CALLER = "The calling application is not allowed."
ALGORITHM = "The token's signing algorithm is not accepted."
NO_KID = "The token names no signing key."
UNKNOWN_KEY = "The token's signing key is not recognised."
TOO_LARGE = "The access token is too large."
ONE_TOKEN = "Send exactly one bearer token in the Authorization header."
NOT_GRANTED = "The token does not grant this operation."


DAVE_OID = "5d6e7f80-91a2-43b4-85d6-e7f8091a2b3c"  # in the demo directory; no test revokes or disables him


def _for_dave(builder: Any, stack: Any, api: Any, seconds: int) -> str:
    return str(builder(stack, api, seconds, oid=DAVE_OID))


def challenge(realm: str, error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    parts = [f'realm="{realm}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


# -- 1. the attack catalogue ------------------------------------------------------------------------

# The catalogue says which status and error code stop each attack; the description pins *which*
# check stopped it, so removing a check can't hide behind a later one that happens to refuse too.
ATTACK_DESCRIPTIONS: dict[str, str | tuple[str, ...] | None] = {
    "no-credentials": None,
    "basic-scheme": None,
    "token-in-query": None,
    "token-in-cookie": None,
    "empty-bearer": ONE_TOKEN,
    "two-tokens": ONE_TOKEN,
    "not-a-jwt": MALFORMED,
    "alg-none": ALGORITHM,
    "alg-None": ALGORITHM,
    "alg-NONE": ALGORITHM,
    "alg-nOnE": ALGORITHM,
    "hs256-public-key": ALGORITHM,
    "es256-attacker": ALGORITHM,
    "ps256-attacker": ALGORITHM,
    "forged-signature": INVALID,
    # Cut short, the signature's base64 may no longer decode (malformed) or decode to a wrong signature.
    "truncated-signature": (MALFORMED, INVALID),
    "stripped-signature": INVALID,
    "tampered-scopes": INVALID,
    "tampered-user": INVALID,
    "tampered-expiry": INVALID,
    "unknown-kid": UNKNOWN_KEY,
    "no-kid": NO_KID,
    "kid-traversal": UNKNOWN_KEY,
    "jwk-injection": INVALID,
    "jku-injection": INVALID,
    "x5u-injection": INVALID,
    "x5c-injection": INVALID,
    "oversized": TOO_LARGE,
    "two-dots-only": MALFORMED,
    "header-not-json": MALFORMED,
    "audience-confusion": AUDIENCE,
}


def test_every_catalogued_attack_has_an_expected_description() -> None:
    assert {a.id for a in ATTACKS} == set(ATTACK_DESCRIPTIONS)


@pytest.fixture(scope="session")
def attack_contexts(
    jwks: dict[str, Any], alice_api_token: str, alice_downstream_token: str
) -> dict[str, AttackContext]:
    """What an attacker holds against each tier: one real token for it, one real token for the other."""
    return {
        "api": AttackContext(alice_api_token, jwks, other_audience_token=alice_downstream_token),
        "downstream-api": AttackContext(alice_downstream_token, jwks, other_audience_token=alice_api_token),
    }


def test_the_real_tokens_the_attacks_start_from_are_accepted(
    http: httpx.Client, targets: dict[str, Api], alice_api_token: str, alice_downstream_token: str
) -> None:
    # Otherwise every refusal below would prove nothing.
    assert http.get(targets["api"].base + "/tasks", headers={"Authorization": f"Bearer {alice_api_token}"}).is_success
    r = http.get(targets["downstream-api"].url(), headers={"Authorization": f"Bearer {alice_downstream_token}"})
    assert r.status_code == 200


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.id)
def test_attack_is_refused(
    attack: Attack,
    tier: str,
    http: httpx.Client,
    targets: dict[str, Api],
    attack_contexts: dict[str, AttackContext],
) -> None:
    api = targets[tier]
    # GET /tasks at the api, GET /records at downstream-api: the routes the scorecard attacks.
    url = api.base + ("/tasks" if tier == "api" else "/records")
    outcome = fire(attack, attack_contexts[tier], http, url, api.realm)
    assert outcome.passed, f"{attack.id} at {tier}: {outcome.why} (got {outcome.status} {outcome.www_authenticate!r})"
    described = ATTACK_DESCRIPTIONS[attack.id]
    expected = [
        challenge(api.realm, attack.error, d) for d in (described if isinstance(described, tuple) else [described])
    ]
    assert outcome.www_authenticate in expected


# -- 2. validly signed, wrong in one way ------------------------------------------------------------

Build = Callable[[RunningStack, Api], str]


@dataclass(frozen=True)
class Case:
    id: str
    build: Build
    status: int
    description: str | None = None  # for 401: which check refused it
    scope: str | None = None  # for 403: "read" or "write", the route's needed scopes
    write: bool = False  # send to the write route (POST) instead of the read route (GET)
    tiers: tuple[str, ...] = tuple(TIERS)


def refused(case_id: str, build: Build, description: str, **kw: Any) -> Case:
    return Case(case_id, build, 401, description, **kw)


def forbidden(case_id: str, build: Build, scope: str = "read", **kw: Any) -> Case:
    return Case(case_id, build, 403, scope=scope, **kw)


def accepted(case_id: str, build: Build, **kw: Any) -> Case:
    return Case(case_id, build, 200, **kw)


def _other(api: Api) -> str:
    return app_id("downstream-api" if api.name == "api" else "api")


REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "tid", "oid", "sub", "azp", "ver"]

CASES: list[Case] = [
    accepted("baseline-valid", build_access_token),
    # Lifetime, with the documented leeway (LEEWAY_SECONDS) on each side and not a second more.
    refused("expired", build_access_token_expired, EXPIRED),
    # The leeway cases for a user no test revokes: the api exchanges each token on her behalf, and a token issued
    # before a revocation of the session's other tests is refused there, rightly (continuous access).
    accepted("expired-within-leeway", lambda s, a: _for_dave(build_access_token_expired, s, a, LEEWAY_SECONDS // 2)),
    refused(
        "expired-just-past-leeway",
        lambda s, a: build_access_token_expired(s, a, seconds_ago=LEEWAY_SECONDS + 15),
        EXPIRED,
    ),
    refused("not-yet-valid", build_access_token_not_yet_valid, NOT_YET),
    accepted("nbf-within-leeway", lambda s, a: _for_dave(build_access_token_not_yet_valid, s, a, LEEWAY_SECONDS // 2)),
    refused("issued-in-future", build_access_token_issued_in_future, NOT_YET),
    accepted(
        "iat-within-leeway", lambda s, a: _for_dave(build_access_token_issued_in_future, s, a, LEEWAY_SECONDS // 2)
    ),
    refused("exp-not-a-number", lambda s, a: build_access_token(s, a, exp="tomorrow"), INVALID),
    refused("exp-null", lambda s, a: build_access_token(s, a, exp=None), INVALID),
    # Every required claim, missing in turn.
    *[
        refused(f"missing-{claim}", lambda s, a, c=claim: build_access_token_without(s, a, c), INVALID)
        for claim in REQUIRED
    ],
    # Claims of the wrong type are refused too, not trusted or crashed on.
    refused("oid-not-a-string", lambda s, a: build_access_token(s, a, oid=12345), INVALID),
    refused("tid-not-a-string", lambda s, a: build_access_token(s, a, tid=[Issuer(s).tenants["contoso"]]), TENANT),
    # Version.
    refused("ver-1.0", build_access_token_v1, VERSION),
    refused("ver-2", lambda s, a: build_access_token(s, a, ver="2"), VERSION),
    # Issuer and tenant.
    refused("issuer-other-host", build_access_token_other_host, ISSUER),
    refused("issuer-entra-host", lambda s, a: build_access_token_other_host(s, a, ENTRA_HOST), ISSUER),
    refused(
        "issuer-http-scheme",
        lambda s, a: build_access_token(s, a, iss=Issuer(s).issuer().replace("https:", "http:")),
        ISSUER,
    ),
    refused("issuer-trailing-slash", lambda s, a: build_access_token(s, a, iss=Issuer(s).issuer() + "/"), ISSUER),
    refused(
        "issuer-v1-format", lambda s, a: build_access_token(s, a, iss=Issuer(s).issuer().removesuffix("/v2.0")), ISSUER
    ),
    refused(
        "issuer-tenant-placeholder",
        lambda s, a: build_access_token(
            s, a, iss=Issuer(s).issuer().replace(Issuer(s).tenants["contoso"], "{tenantid}")
        ),
        ISSUER,
    ),
    refused("tenant-not-allowed", build_access_token_other_tenant, TENANT),
    refused(
        "issuer-other-tenant-tid-allowed", lambda s, a: build_access_token_issuer(s, a, "fabrikam", "contoso"), ISSUER
    ),
    refused(
        "issuer-allowed-tid-other-tenant", lambda s, a: build_access_token_issuer(s, a, "contoso", "fabrikam"), TENANT
    ),
    # Audience.
    refused("audience-other-api", lambda s, a: build_access_token_for_audience(s, a, _other(a)), AUDIENCE),
    refused("audience-web-app", lambda s, a: build_access_token_for_audience(s, a, app_id("web")), AUDIENCE),
    refused("audience-graph", lambda s, a: build_access_token_for_audience(s, a, GRAPH_APP_ID), AUDIENCE),
    refused("audience-app-id-uri", lambda s, a: build_access_token_for_audience(s, a, f"api://{a.app_id}"), AUDIENCE),
    refused(
        "audience-list-of-others",
        lambda s, a: build_access_token_for_audience(s, a, [_other(a), GRAPH_APP_ID]),
        AUDIENCE,
    ),
    # An ID token has no azp (nor scp): refused as incomplete before its audience is even compared.
    refused("id-token-as-access-token", build_id_token, INVALID),
    # Calling application (azp).
    refused("caller-daemon", lambda s, a: build_access_token_from_client(s, a, app_id("daemon")), CALLER),
    refused("caller-itself", lambda s, a: build_access_token_from_client(s, a, a.app_id), CALLER),
    refused(
        "caller-web-at-downstream",
        lambda s, a: build_access_token_from_client(s, a, app_id("web")),
        CALLER,
        tiers=("downstream-api",),
    ),
    refused(
        "caller-cli-at-downstream",
        lambda s, a: build_access_token_from_client(s, a, app_id("cli")),
        CALLER,
        tiers=("downstream-api",),
    ),
    refused(
        "caller-downstream-at-api",
        lambda s, a: build_access_token_from_client(s, a, app_id("downstream-api")),
        CALLER,
        tiers=("api",),
    ),
    # Algorithms outside the allowlist, even with the provider's real key.
    *[
        refused(f"real-key-{alg}", lambda s, a, alg=alg: build_access_token_with_alg(s, a, alg), ALGORITHM)
        for alg in ("RS384", "RS512", "PS256")
    ],
    # Size cap, at the boundary: a validly signed token at the cap is fine, over it isn't (see below).
    accepted("size-at-cap", lambda s, a: build_access_token_of_length(s, a, MAX_TOKEN_BYTES)),
    refused("size-over-cap", lambda s, a: build_access_token_of_length(s, a, MAX_TOKEN_BYTES + 4), TOO_LARGE),
    # Permissions, checked per route after validation: 403 naming what is needed.
    forbidden(
        "app-only-on-delegated-route", lambda s, a: build_app_only_token(s, a, [*a.read_scopes, *a.write_scopes])
    ),
    forbidden("app-only-without-idtyp", lambda s, a: build_app_only_token(s, a, ["Tasks.Report.All"], idtyp=None)),
    forbidden(
        "idtyp-app-with-scopes",
        lambda s, a: build_access_token_with_scopes(s, a, a.read_scopes[0], idtyp="app", azp=a.app_caller),
    ),
    forbidden("no-scp-claim", lambda s, a: build_access_token_with_scopes(s, a, None)),
    forbidden("empty-scp", lambda s, a: build_access_token_with_scopes(s, a, "")),
    forbidden("openid-scopes-only", lambda s, a: build_access_token_with_scopes(s, a, "openid profile offline_access")),
    forbidden("other-apis-scopes", lambda s, a: build_access_token_with_scopes(s, a, a.foreign_scopes)),
    forbidden("scope-wrong-case", lambda s, a: build_access_token_with_scopes(s, a, a.read_scopes[0].lower())),
    forbidden("scope-superstring", lambda s, a: build_access_token_with_scopes(s, a, a.read_scopes[0] + ".All")),
    forbidden(
        "roles-instead-of-scopes", lambda s, a: build_access_token_with_scopes(s, a, None, roles=[*a.read_scopes])
    ),
    forbidden(
        "read-scope-on-write-route",
        lambda s, a: build_access_token_with_scopes(s, a, a.read_scopes[0]),
        scope="write",
        write=True,
    ),
    forbidden(
        "role-does-not-add-write",
        lambda s, a: build_access_token_with_scopes(s, a, a.read_scopes[0], roles=[*a.write_scopes]),
        scope="write",
        write=True,
    ),
    forbidden(
        "app-only-on-write-route", lambda s, a: build_app_only_token(s, a, [*a.write_scopes]), scope="write", write=True
    ),
]

CASE_PARAMS = [pytest.param(case, tier, id=f"{case.id}@{tier}") for case in CASES for tier in case.tiers]


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_size_cases_straddle_the_cap(stack: RunningStack, targets: dict[str, Api]) -> None:
    # base64url can't make every length, so "at the cap" may be up to 3 bytes short of it.
    api = targets["api"]
    assert MAX_TOKEN_BYTES - 3 <= len(build_access_token_of_length(stack, api, MAX_TOKEN_BYTES)) <= MAX_TOKEN_BYTES
    assert MAX_TOKEN_BYTES < len(build_access_token_of_length(stack, api, MAX_TOKEN_BYTES + 4)) <= MAX_TOKEN_BYTES + 4


@pytest.mark.parametrize(("case", "tier"), CASE_PARAMS)
def test_minted_token(case: Case, tier: str, stack: RunningStack, http: httpx.Client, targets: dict[str, Api]) -> None:
    api = targets[tier]
    token = case.build(stack, api)
    headers = {"Authorization": f"Bearer {token}"}
    if case.write:
        r = http.post(api.url(api.write_path), headers=headers, json={"title": "must not be stored"})
    else:
        r = http.get(api.url(), headers=headers)
    if case.status == 200:
        assert r.status_code == 200, (r.status_code, r.headers.get("www-authenticate"), r.text[:300])
        assert "www-authenticate" not in r.headers
        return
    if case.status == 403:
        needed = " ".join(api.write_scopes if case.scope == "write" else api.read_scopes)
        expected = challenge(api.realm, "insufficient_scope", NOT_GRANTED, needed)
    else:
        expected = challenge(api.realm, "invalid_token", case.description)
    assert (r.status_code, r.headers.get("www-authenticate")) == (case.status, expected), r.text[:300]
    assert r.headers.get("cache-control") == "no-store"


# -- 3. header-supplied key URLs are never fetched --------------------------------------------------


class Listener:
    """A TCP listener on loopback that records every connection: an HTTP or a TLS client alike."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    listening = Listener()
    yield listening
    listening.close()


@pytest.mark.parametrize("tier", TIERS)
def test_header_key_urls_are_never_fetched(
    tier: str, listener: Listener, stack: RunningStack, http: httpx.Client, targets: dict[str, Api], issuer: Issuer
) -> None:
    api = targets[tier]
    ctx = AttackContext(issuer.token(api), {"keys": []})
    urls = [f"{scheme}://127.0.0.1:{listener.port}/keys" for scheme in ("http", "https")]
    # The listener works: a client that did follow the URL would be seen.
    with socket.create_connection(("127.0.0.1", listener.port), timeout=2):
        pass
    deadline = time.monotonic() + 5
    while listener.connections < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert listener.connections == 1
    answers = []
    for url in urls:
        for name in ("jku", "x5u"):
            # The provider's real key with a URL beside it: accepted, the URL ignored.
            real = issuer.sign(issuer.claims(api), **{name: url})
            # The attacker's key behind the URL: refused, the URL still ignored.
            forged = ctx.attacker_signed(**{name: url})
            # An unknown kid: the API looks in the provider's key set, not at the URL.
            unknown = ctx.attacker_signed(kid="kid-behind-" + name, **{name: url})
            for token in (real, forged, unknown):
                r = http.get(api.url(), headers={"Authorization": f"Bearer {token}"})
                answers.append((r.status_code, r.headers.get("www-authenticate")))
    # Each request was answered before the next went out: any fetch would have happened by now.
    assert listener.connections == 1
    refused_forged = challenge(api.realm, "invalid_token", INVALID)
    refused_unknown = challenge(api.realm, "invalid_token", UNKNOWN_KEY)
    assert answers == [(200, None), (401, refused_forged), (401, refused_unknown)] * 4
