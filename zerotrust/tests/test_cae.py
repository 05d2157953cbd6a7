"""Claims challenges: read only when well formed, relayed only to a caller that declared cp1."""

from __future__ import annotations

import base64
import json

import pytest
from zerotrust.cae import bearer_refusal, challenged_claims, claims_request, for_caller, handles_claims_challenges
from zerotrust.onbehalf import OboError
from zerotrust.protect import www_authenticate
from zerotrust.tokens import Principal

pytestmark = pytest.mark.guidance("secure-with-cae")

NBF = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'


def _b64(text: str, *, urlsafe: bool = False) -> str:
    raw = text.encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") if urlsafe else base64.b64encode(raw).decode()


def _caller(*xms_cc: str) -> Principal:
    claims = {"tid": "t", "oid": "o", "sub": "s", "aud": "a", "iss": "i", "azp": "z", "ver": "2.0", "exp": 1}
    return Principal.from_claims({**claims, "scp": "Tasks.Read", "xms_cc": list(xms_cc)})


def test_entras_challenge_gives_its_claims_request() -> None:
    header = (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
        f'client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", claims="{_b64(NBF)}"'
    )
    assert json.loads(challenged_claims(header) or "") == json.loads(NBF)


def test_url_safe_unpadded_claims_are_read_too() -> None:
    claims = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}'
    assert challenged_claims(f'Bearer error="insufficient_claims", claims="{_b64(claims, urlsafe=True)}"')


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f'Basic error="insufficient_claims", claims="{_b64(NBF)}"',  # not a bearer challenge
        f'Bearer error="invalid_token", claims="{_b64(NBF)}"',  # not a claims challenge
        'Bearer error="insufficient_claims"',  # no claims
        'Bearer error="insufficient_claims", claims="%%%not base64%%%"',
        f'Bearer error="insufficient_claims", claims="{_b64("not json")}"',
        f'Bearer error="insufficient_claims", claims="{_b64("[1, 2]")}"',  # not an object
        f'Bearer error="insufficient_claims", claims="{_b64(json.dumps({"evil": {}}))}"',  # unknown member
        f'Bearer error="insufficient_claims", claims="{_b64(json.dumps({"access_token": "x"}))}"',
        f'Bearer error="insufficient_claims", claims="{_b64(json.dumps({"access_token": {"x": "y" * 3000}}))}"',
    ],
    ids=[
        "none",
        "empty",
        "basic",
        "other-error",
        "no-claims",
        "not-base64",
        "not-json",
        "a-list",
        "unknown-member",
        "member-not-object",
        "oversized",
    ],
)
def test_anything_else_is_no_claims_challenge(header: str | None) -> None:
    assert challenged_claims(header) is None


def test_claims_are_passed_on_compact_and_checked() -> None:
    assert claims_request(' { "access_token" : { } } ') == '{"access_token":{}}'
    assert claims_request("{}") is None


def test_cp1_is_recognised_however_cased() -> None:
    assert handles_claims_challenges(["cp1"]) and handles_claims_challenges(["CP1"])
    assert not handles_claims_challenges([]) and not handles_claims_challenges(["cp2"])


def test_the_relay_rule_tells_claims_only_to_a_cp1_caller() -> None:
    refusal = OboError(401, "invalid_token", "Sign in again.", "interaction_required", (50173,), NBF)
    capable = for_caller(refusal, ["cp1"])
    assert (capable.status, capable.error, capable.claims) == (401, "insufficient_claims", NBF)
    plain = for_caller(refusal, [])
    assert (plain.status, plain.error, plain.claims) == (401, "invalid_token", None)
    consent = OboError(403, "consent_required", "Ask an administrator.")
    assert for_caller(consent, ["cp1"]) is consent


def test_a_relayed_challenge_round_trips_through_the_header() -> None:
    refusal = OboError(401, "invalid_token", "Sign in again.", claims=NBF)
    told = bearer_refusal(refusal, _caller("cp1"), "downstream-api")
    header = told.headers["WWW-Authenticate"]
    assert header.startswith('Bearer realm="downstream-api", error="insufficient_claims"')
    assert challenged_claims(header) == claims_request(NBF)
    plain = bearer_refusal(refusal, _caller(), "downstream-api").headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in plain and "claims=" not in plain
    assert www_authenticate("api", None) == 'Bearer realm="api"'
