"""Fuzzing both live APIs: the Authorization header, then every operation of their schemas.

Whatever arrives, an API answers 400 or 401 to a request it can't authenticate, and never 5xx.
"""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

import httpx
import pytest
import schemathesis
from devtools.token import device_code_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.security.conftest import obo_token
from tests.support.launch import RunningStack
from tests.support.tokens import Api

pytestmark = pytest.mark.guidance("protect-api")

TIERS = ["api", "downstream-api"]
FUZZ_USER = "dave@contoso.test"  # not alice: the valid-token fuzz below creates records for its user


# -- the Authorization header ------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
jose_headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "none", "HS256", "ES256", "", "RS256 ", "rs256"]) | st.text(max_size=8),
        "kid": st.text(max_size=40) | st.integers() | st.lists(st.text(max_size=5), max_size=3),
        "typ": st.sampled_from(["JWT", "at+jwt"]),
        "jku": st.just("https://127.0.0.1:9/keys"),
        "crit": st.lists(st.text(max_size=5), max_size=2),
    },
)
segment = st.one_of(
    st.binary(max_size=64).map(_b64),
    json_values.map(lambda v: _b64(json.dumps(v).encode())),
    st.text(max_size=30),
)
jwt_shaped = st.one_of(
    st.tuples(jose_headers.map(lambda h: _b64(json.dumps(h).encode())), segment, segment).map(".".join),
    st.lists(segment, min_size=1, max_size=8).map(".".join),
)
junk = st.one_of(
    st.text(max_size=200),  # any unicode: sent as UTF-8 bytes
    st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
    st.integers(1, 500).map(lambda n: "." * n),
    st.integers(1, 20_000).map(lambda n: "A" * n),
    st.integers(1, 40).map(lambda n: ".".join(["eyJhbGciOiJSUzI1NiJ9"] * n)),
)
schemes = st.sampled_from(
    ["Bearer", "bearer", "BEARER", "BeArEr", "Basic", "Digest", "Negotiate", "DPoP", "", "Bearer:"]
)
separators = st.sampled_from([" ", "  ", "\t", " \t ", "", ","])
headers = st.tuples(schemes, separators, st.one_of(jwt_shaped, junk), st.sampled_from(["", " ", " x", " Bearer y"]))


def _wire(value: str) -> bytes:
    """What can be put on the wire at all: HTTP field values carry no CR, LF, NUL or other controls,
    and no leading or trailing whitespace (the server would strip it anyway)."""
    raw = value.encode("utf-8", "surrogatepass")
    return bytes(b for b in raw if (b >= 0x20 and b != 0x7F) or b == 0x09).strip(b" \t")


@pytest.mark.parametrize("tier", TIERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=headers)
def test_any_authorization_header_gets_400_or_401_never_5xx(
    tier: str, parts: tuple[str, str, str, str], http: httpx.Client, targets: dict[str, Api]
) -> None:
    api = targets[tier]
    value = _wire("".join(parts))
    r = http.get(api.url(), headers=[(b"Authorization", value)])
    assert r.status_code in (400, 401), (value[:200], r.status_code, r.text[:200])
    if r.status_code == 401:
        assert r.headers["www-authenticate"].startswith(f'Bearer realm="{api.realm}"')


# -- every operation of each schema (schemathesis) ---------------------------------------------------


@pytest.fixture(scope="session")
def fuzz_tokens(stack: RunningStack) -> dict[str, str]:
    """Real tokens for a user of its own: for the api (device code) and downstream-api (on-behalf-of)."""
    api = device_code_token(stack.info, FUZZ_USER)
    return {"api": api, "downstream-api": obo_token(stack.info, stack.local_dir, api, stack.info["downstream_scopes"])}


@pytest.fixture(scope="session")
def schemas(stack: RunningStack) -> dict[str, Any]:
    """The api publishes its schema: read from the running service, as a client would. downstream-api
    serves none (openapi_url=None): built from the same app, in-process; the calls go to the live one."""
    from downstream_api.main import create_app

    tls = ssl.create_default_context(cafile=stack.info["ca_bundle"])
    document = httpx.get(f"{stack.info['api']}/openapi.json", verify=tls, trust_env=False).json()
    return {
        "api": schemathesis.openapi.from_dict(document),
        "downstream-api": schemathesis.openapi.from_dict(create_app().openapi()),
    }


def _call_both_ways(case: Any, base: str, token: str, ca_bundle: str) -> None:
    """With a valid token (so the fuzz reaches the handlers) and without one: never a 5xx."""
    for headers in ({"Authorization": f"Bearer {token}"}, {}):
        case.call_and_validate(base_url=base, headers=headers, verify=ca_bundle, checks=[not_a_server_error])


@pytest.mark.parametrize("tier", TIERS)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_schema_fuzz_never_5xx(
    tier: str,
    data: st.DataObject,
    stack: RunningStack,
    schemas: dict[str, Any],
    targets: dict[str, Api],
    fuzz_tokens: dict[str, str],
) -> None:
    # Valid requests and invalid ones (wrong types, missing fields, bad path parameters), over every
    # operation; schemathesis's pytest loader doesn't run under pytest 9, so its strategies are drawn here.
    schema = schemas[tier]
    case = data.draw(
        st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)),
        label="case",
    )
    _call_both_ways(case, targets[tier].base, fuzz_tokens[tier], stack.info["ca_bundle"])
