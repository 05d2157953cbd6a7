"""Fuzzing the emulator in process: whatever arrives, it answers without a server error.

Forms mix the parameter names the endpoints know (with real and random values: live codes and
refresh tokens, managed identity tokens, well-formed JWTs with random headers and claims signed
by random keys or by the registered certificate) with random names and values: unicode, NULs,
huge strings, wrong content types, raw bytes. The token endpoints must also keep Entra's error
shape on every 4xx. Derandomized, so CI runs the same examples every time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from identity_emulator.client_auth import ASSERTION_TYPE

FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BACK, FRONT = "https://localhost:8443", "http://localhost:8444"  # as the conftest's emulator is configured
LOOPBACK_PEER = ("127.0.0.1", 50000)
WEB_REDIRECT = "http://localhost:8000/auth/callback"


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


# Fixed at import: a strategy must not change between Hypothesis' runs of one example.
NOW = int(time.time())
# A key nobody registered: assertions it signs are well-formed and must still be refused.
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

GRANT_TYPES = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:device_code",
    "device_code",
    "password",
    "implicit",
    "urn:ietf:params:oauth:grant-type:saml2-bearer",
]
TOKEN_FIELDS = [
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "code",
    "refresh_token",
    "assertion",
    "scope",
    "redirect_uri",
    "code_verifier",
    "device_code",
    "requested_token_use",
    "claims",
]
AUTHORIZE_FIELDS = [
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "login_hint",
    "claims",
    "domain_hint",
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/json",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
    "application/x-www-form-urlencoded;;;",
    "*/*",
]

# -- values ---------------------------------------------------------------------------------------

ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
nasty = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "%00",
        "\u202e",
        "💥",
        "null",
        "[]",
        "{}",
        "'",
        '"',
        "<script>x</script>",
        "../../etc/passwd",
        "\r\n",
        "ǅ",
        "ß",
        "İ",
        "\ufeff",
        "\U0010ffff",
        "9" * 400,
        "-1",
        "1e309",
        "NaN",
    ]
)
huge = st.sampled_from([1_000, 20_000, 70_000]).map(lambda n: "é" * n if n < 20_000 else "x" * n)
short_junk = st.one_of(st.text(max_size=40), nasty, ascii_text, st.text(max_size=400))
junk = short_junk | huge  # past the 64 KiB body limit too; query strings stay short (httpx caps URLs)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
# Nesting deep enough to exhaust a recursive parser (the form limit allows some 20 000 levels).
DEEP_JSON = st.sampled_from(["[", '{"a":', '{"access_token":{"xms_cc":{"values":[']).flatmap(
    lambda opener: st.sampled_from([50, 3000, 15000]).map(lambda n: '{"access_token":' + opener * n)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwts(s: Any) -> st.SearchStrategy[str]:
    """Structurally valid JWTs: random headers and claims, signed by a stranger or by the registered key."""
    now = NOW
    ids = list(s.app_ids.values()) + s.mi_object_ids
    thumbprint = st.sampled_from([s.cert_s256, s.cert_s256 + "=="]) | ascii_text | json_values
    plausible = st.fixed_dictionaries(
        {"alg": st.sampled_from(["RS256", "PS256", "HS256", "none", "ES256", "rs256"])},
        optional={
            "kid": st.sampled_from(s.kids) | ascii_text,
            "x5t#S256": thumbprint,
            "x5t": st.just(s.cert_s1) | thumbprint,
            "typ": st.just("JWT") | json_values,
        },
    )
    # Headers PyJWT itself refuses (crit, a non-string kid) stop early; keep them, but as the minority.
    wild = st.fixed_dictionaries(
        {"alg": st.sampled_from(["RS256", "PS256"]) | json_values},
        optional={
            "kid": st.sampled_from(s.kids) | json_values,
            "x5t#S256": thumbprint,
            "x5t": thumbprint,
            "crit": json_values,
            "jku": st.just("https://evil.example/keys"),
            "x5u": json_values,
        },
    )
    header = st.integers(0, 3).flatmap(lambda i: wild if i == 0 else plausible)
    claims = st.fixed_dictionaries(
        {},
        optional={
            "aud": st.sampled_from([*s.token_endpoints, *s.issuers, "api://AzureADTokenExchange", *ids])
            | st.lists(st.sampled_from(s.token_endpoints), max_size=2)
            | json_values,
            "iss": st.sampled_from([*ids, *s.issuers]) | json_values,
            "sub": st.sampled_from(ids) | json_values,
            "jti": ascii_text | json_values,
            "exp": st.integers(now - 10_000, now + 10_000) | json_values,
            "nbf": st.integers(now - 10_000, now + 10_000) | json_values,
            "iat": st.integers(now - 10_000, now + 10_000) | json_values,
            "tid": st.sampled_from(s.tenant_ids) | json_values,
            "oid": json_values,
            "scp": st.sampled_from(["Tasks.Read", ""]) | json_values,
            "idtyp": st.sampled_from(["app", "user"]) | json_values,
        },
    ).flatmap(lambda c: st.dictionaries(st.text(max_size=8), json_values, max_size=2).map(lambda extra: {**extra, **c}))
    signer = st.sampled_from(["stranger", "registered", "hmac", "none", "garbage"])

    def build(h: dict[str, Any], c: dict[str, Any], who: str) -> str:
        signing_input = f"{b64(json.dumps(h).encode())}.{b64(json.dumps(c).encode())}"
        data = signing_input.encode()
        if who in ("stranger", "registered"):
            key = STRANGER_KEY if who == "stranger" else s.cert_key
            pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
            sig = key.sign(data, pss if h.get("alg") == "PS256" else padding.PKCS1v15(), hashes.SHA256())
        elif who == "hmac":
            sig = hmac.new(b"secret", data, "sha256").digest()
        elif who == "none":
            sig = b""
        else:
            sig = b"\x00" * 256
        return f"{signing_input}.{b64(sig)}"

    structured = st.builds(build, header, claims, signer)
    malformed: st.SearchStrategy[str] = st.one_of(
        st.lists(
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30), min_size=1, max_size=5
        ).map(".".join),
        st.tuples(json_values, json_values).map(
            lambda hc: f"{b64(json.dumps(hc[0]).encode())}.{b64(json.dumps(hc[1]).encode())}.sig"
        ),
        st.binary(max_size=60).map(lambda b: f"{b64(b)}.{b64(b)}.{b64(b)}"),
    )
    # Mostly well-formed: a malformed token stops at the first parse, a well-formed one goes further.
    return st.integers(0, 3).flatmap(lambda i: malformed if i == 0 else structured)


def scope_values(s: Any, junk: st.SearchStrategy[str] = junk) -> st.SearchStrategy[str]:
    known = [
        *s.scopes,
        "openid",
        "offline_access",
        "profile",
        "email",
        "api://unknown/.default",
        "https://graph.microsoft.com/.default",
        "a/b/c",
        "/",
        "x/",
        "/x",
        ".default",
        *[f"{r}/.default" for r in s.resources],
    ]
    piece = st.sampled_from(known) | ascii_text
    return st.lists(piece, max_size=4).map(" ".join) | junk


def claims_values(junk: st.SearchStrategy[str] = junk) -> st.SearchStrategy[str]:
    cp1 = '{"access_token":{"xms_cc":{"values":["cp1"]}}}'
    odd = st.sampled_from(
        [
            '{"access_token":{"xms_cc":{"values":"cp1"}}}',
            '{"access_token":null}',
            "[]",
            '"cp1"',
            '{"access_token":{"xms_cc":{"values":[["cp1"]]}}}',
            '{"access_token":{"xms_cc":[]}}',
        ]
    )
    return st.one_of(st.just(cp1), DEEP_JSON, odd, json_values.map(json.dumps), junk)


_FIELD_VALUES: dict[tuple[int, int], dict[str, st.SearchStrategy[str]]] = {}


def field_values(s: Any, junk: st.SearchStrategy[str] = junk) -> dict[str, st.SearchStrategy[str]]:
    """Value strategies by parameter name (built once per emulator: examples draw from them often)."""
    key = (id(s), id(junk))
    if key not in _FIELD_VALUES:
        _FIELD_VALUES[key] = _field_values(s, junk)
    return _FIELD_VALUES[key]


def uri_variants(registered: list[str]) -> st.SearchStrategy[str]:
    """Near misses of registered URIs: other ports (valid, out of range, not numbers), hosts, userinfo."""
    port = st.integers(-1, 70_000).map(str) | st.sampled_from(["", "abc", "0x50", "８０００"]) | ascii_text
    host = st.sampled_from(
        [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "[::1]",
            "[::1",
            "evil.example",
            "localhost.evil.example",
            "localhost:8000@evil.example",
            "localhost%00",
        ]
    )
    path = st.sampled_from(["/auth/callback", "/", "", "/auth/callback/", "/Auth/Callback", "/auth/callback?x=1"])
    scheme = st.sampled_from(["http", "https", "HTTP", "javascript", ""])
    built = st.builds(lambda sc, h, p, pa: f"{sc}://{h}:{p}{pa}", scheme, host, port, path)
    return st.sampled_from(registered) | built


def _field_values(s: Any, junk: st.SearchStrategy[str]) -> dict[str, st.SearchStrategy[str]]:
    ids = list(s.app_ids.values())
    client_ids = (
        st.sampled_from(ids + [i.upper() for i in ids] + s.mi_client_ids + [f" {ids[0]} "]) | st.uuids().map(str) | junk
    )
    assertions = st.sampled_from(s.mi_assertions + s.access_tokens) | jwts(s) | junk
    tenants = st.sampled_from(s.tenant_ids + s.tenant_names) | junk
    return {
        "grant_type": st.sampled_from(GRANT_TYPES) | junk,
        "client_id": client_ids,
        "client_secret": junk,
        "client_assertion": assertions,
        "client_assertion_type": st.sampled_from([ASSERTION_TYPE, ASSERTION_TYPE.upper()]) | junk,
        "code": st.sampled_from(s.codes) | junk,
        "refresh_token": st.sampled_from(s.refresh_tokens) | junk,
        "assertion": assertions,
        "scope": scope_values(s, junk),
        "redirect_uri": uri_variants(s.redirect_uris) | junk,
        "code_verifier": st.sampled_from(s.verifiers) | junk,
        "device_code": st.sampled_from(s.device_codes) | junk,
        "requested_token_use": st.sampled_from(["on_behalf_of"]) | junk,
        "claims": claims_values(junk),
        "txn": st.sampled_from(s.txns) | junk,
        "username": st.sampled_from([*s.users, s.users[0].upper(), f" {s.users[0]} "]) | junk,
        "password": st.just(s.password) | junk,
        "decision": st.sampled_from(["accept", "decline"]) | junk,
        "user_code": st.sampled_from(s.user_codes + [f"{c[:3]}-{c[3:]}".lower() for c in s.user_codes]) | junk,
        "upn": st.sampled_from(s.users) | junk,
        "tenant": tenants,
        "client": st.sampled_from(list(s.app_ids)) | junk,
        "resource": st.sampled_from(list(s.app_ids) + s.resources) | junk,
        "response_type": st.sampled_from(["code", "token", "id_token", "code id_token"]) | junk,
        "state": junk,
        "nonce": junk,
        "code_challenge": st.sampled_from(["A" * 43, "a-b_" * 10 + "abc", "A" * 43 + "\n"]) | junk,
        "code_challenge_method": st.sampled_from(["S256", "plain", "s256"]) | junk,
        "response_mode": st.sampled_from(["query", "form_post", "fragment"]) | junk,
        "prompt": st.sampled_from(["none", "login", "consent", "select_account"]) | junk,
        "login_hint": st.sampled_from(s.users) | junk,
        "domain_hint": junk,
        "post_logout_redirect_uri": uri_variants(s.redirect_uris) | junk,
        "api-version": st.sampled_from(["2019-08-01", "2018-02-01"]) | junk,
        "principal_id": st.sampled_from(s.mi_object_ids) | junk,
        "object_id": st.sampled_from(s.mi_object_ids) | junk,
        "mi_res_id": junk,
    }


@st.composite
def pairs(draw: st.DrawFn, s: Any, names: list[str], junk: st.SearchStrategy[str] = junk) -> list[tuple[str, str]]:
    """Known names with fitting or random values, random extra names, sometimes a name twice."""
    values = field_values(s, junk)
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    out = [(n, draw(values.get(n, junk))) for n in chosen]
    out += draw(st.lists(st.tuples(junk, junk), max_size=3))
    if out and draw(st.booleans()):
        name = draw(st.sampled_from([n for n, _ in out]))
        out.append((name, draw(values.get(name, junk))))
    return out


def path_segments(s: Any) -> st.SearchStrategy[str]:
    """A tenant segment: known ones, the multi-tenant ones, and random text that still routes."""
    routable = st.text(min_size=1, max_size=60).filter(lambda t: "/" not in t and t not in (".", ".."))
    return (
        st.sampled_from(
            [*s.tenant_ids, *s.tenant_names, "common", "organizations", "consumers", s.tenant_ids[0].upper()]
        )
        | routable
    )


# -- checks ---------------------------------------------------------------------------------------


def check(r: httpx.Response, *, entra_json: bool) -> None:
    assert r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    if entra_json and 400 <= r.status_code < 500:
        assert r.headers.get("content-type", "").startswith("application/json"), r.headers
        body = r.json()
        assert isinstance(body.get("error"), str) and body["error"], body
        assert isinstance(body.get("error_codes"), list) and body["error_codes"], body
        assert str(body.get("error_description", "")).startswith(f"AADSTS{body['error_codes'][0]}:"), body


Clients = tuple[TestClient, TestClient, Any]  # the conftest's Seeds


def post(
    client: TestClient,
    path: str,
    body: list[tuple[str, str]] | bytes,
    content_type: str | None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else urlencode(body).encode()
    h = dict(headers or {})
    if content_type is not None:
        h["content-type"] = content_type
    return client.post(path, content=content, headers=h)


def mi(s: Any, service: str) -> str:
    """The seeded managed identity token of a service: its federated client credential."""
    return str(s.mi_assertions[list(s.emu.identity_headers).index(service)])


def valid_requests(s: Any) -> dict[str, list[tuple[str, str]]]:
    """Requests that succeed as they stand: fuzzing their extras reaches token issuance itself."""

    def auth(app: str, service: str) -> list[tuple[str, str]]:
        return [
            ("client_id", s.app_ids[app]),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", mi(s, service)),
        ]

    api, downstream = s.app_ids["api"], s.app_ids["downstream-api"]
    return {
        "client_credentials": [
            ("grant_type", "client_credentials"),
            ("scope", f"api://{api}/.default"),
            *auth("daemon", "daemon"),
        ],
        "refresh_token": [
            ("grant_type", "refresh_token"),
            ("refresh_token", s.refresh_tokens[0]),
            ("scope", f"api://{api}/Tasks.Read openid offline_access"),
            *auth("web", "web"),
        ],
        "on_behalf_of": [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("requested_token_use", "on_behalf_of"),
            ("assertion", s.access_tokens[0]),
            ("scope", f"api://{downstream}/Records.Read"),
            *auth("api", "api"),
        ],
    }


# -- the token endpoints --------------------------------------------------------------------------


@fuzz(300)
@given(data=st.data())
def test_token_endpoint_forms(app_and_seeds: Clients, data: st.DataObject) -> None:
    back, _, s = app_and_seeds
    tenant = data.draw(path_segments(s), label="tenant")
    form = data.draw(pairs(s, TOKEN_FIELDS), label="form")
    r = post(back, f"/{quote(tenant, safe='')}/oauth2/v2.0/token", form, "application/x-www-form-urlencoded")
    check(r, entra_json=True)
    if r.status_code == 200:
        assert "access_token" in r.json()


@fuzz(150)
@given(data=st.data())
def test_token_endpoint_client_assertions(app_and_seeds: Clients, data: st.DataObject) -> None:
    """Aimed at client authentication: real clients, grant types and scopes, fuzzed assertions."""
    back, _, s = app_and_seeds
    form = [
        ("grant_type", data.draw(st.sampled_from(["client_credentials", "refresh_token"]))),
        # The daemon is the app with a registered certificate: the certificate path is worth most.
        ("client_id", data.draw(st.sampled_from([s.app_ids["daemon"]] * 3 + [s.app_ids["web"], ""]))),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", data.draw(jwts(s), label="assertion")),
        ("scope", f"api://{s.app_ids['api']}/.default"),
        ("refresh_token", s.refresh_tokens[0]),
    ]
    check(
        post(back, f"/{s.tenant_ids[0]}/oauth2/v2.0/token", form, "application/x-www-form-urlencoded"), entra_json=True
    )


@fuzz(120)
@given(data=st.data())
def test_on_behalf_of_assertions(app_and_seeds: Clients, data: st.DataObject) -> None:
    back, _, s = app_and_seeds
    api_mi = mi(s, "api")
    assertion = data.draw(jwts(s) | st.sampled_from(s.access_tokens + s.mi_assertions), label="assertion")
    form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("requested_token_use", "on_behalf_of"),
        ("client_id", s.app_ids["api"]),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", api_mi),
        ("assertion", assertion),
        ("scope", data.draw(scope_values(s), label="scope")),
    ]
    check(
        post(back, f"/{s.tenant_ids[0]}/oauth2/v2.0/token", form, "application/x-www-form-urlencoded"), entra_json=True
    )


@fuzz(150)
@given(data=st.data())
def test_valid_requests_with_fuzzed_extras(app_and_seeds: Clients, data: st.DataObject) -> None:
    back, _, s = app_and_seeds
    name = data.draw(st.sampled_from(sorted(valid_requests(s))), label="grant")
    form = list(valid_requests(s)[name])
    form.append(("claims", data.draw(DEEP_JSON | claims_values(short_junk), label="claims")))
    # Now and then break the request too; mostly keep it valid, so that tokens are really issued.
    if data.draw(st.integers(0, 3), label="replace a field") == 0:
        i = data.draw(st.integers(0, len(form) - 1))
        replacement = field_values(s, short_junk).get(form[i][0], short_junk)
        form[i] = (form[i][0], data.draw(replacement, label="replacement"))
    if data.draw(st.integers(0, 3), label="add extras") == 0:
        # Appended: the first value of a name wins, so these add parameters rather than replace them.
        form += data.draw(pairs(s, TOKEN_FIELDS, short_junk), label="extras")
    check(
        post(back, f"/{s.tenant_ids[0]}/oauth2/v2.0/token", form, "application/x-www-form-urlencoded"), entra_json=True
    )


@fuzz(100)
@given(data=st.data())
def test_authorize_then_redeem_with_fuzzed_extras(app_and_seeds: Clients, data: st.DataObject) -> None:
    """A signed-in browser (the seeded session) asks for a code with fuzzed extras, then redeems it."""
    back, front, s = app_and_seeds
    verifier = "v" * 43
    query = {
        "client_id": s.app_ids["web"],
        "response_type": "code",
        "redirect_uri": WEB_REDIRECT,
        "scope": f"api://{s.app_ids['api']}/Tasks.Read openid offline_access",
        "code_challenge_method": "S256",
        "code_challenge": b64(hashlib.sha256(verifier.encode()).digest()),
    }
    names = ["state", "nonce", "claims", "login_hint", "prompt", "response_mode", "domain_hint"]
    for name in data.draw(st.lists(st.sampled_from(names), unique=True), label="extras"):
        value = claims_values(short_junk) if name == "claims" else field_values(s, short_junk)[name]
        query[name] = data.draw(value, label=name)
    # Browsers and httpx cap a URL near 64 KiB; longer ones never reach a server, so they prove nothing.
    assume(len(urlencode(query)) < 32_000)
    r = front.get(f"/{s.tenant_ids[0]}/oauth2/v2.0/authorize?{urlencode(query)}")
    check(r, entra_json=False)
    code = parse_qs(urlsplit(r.headers.get("location", "")).query).get("code")
    if r.status_code == 200 and 'name="code"' in r.text:  # form_post
        code = [r.text.split('name="code" value="', 1)[1].split('"', 1)[0]]
    if not code:
        return
    form = [
        ("grant_type", "authorization_code"),
        ("code", code[0]),
        ("code_verifier", verifier),
        ("redirect_uri", WEB_REDIRECT),
        ("client_id", s.app_ids["web"]),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", mi(s, "web")),
    ]
    form += data.draw(pairs(s, ["claims", "scope"], short_junk), label="redemption extras")
    check(
        post(back, f"/{s.tenant_ids[0]}/oauth2/v2.0/token", form, "application/x-www-form-urlencoded"), entra_json=True
    )


@fuzz(120)
@given(data=st.data())
def test_device_code_endpoint(app_and_seeds: Clients, data: st.DataObject) -> None:
    back, _, s = app_and_seeds
    tenant = data.draw(path_segments(s), label="tenant")
    form = data.draw(
        pairs(s, ["client_id", "scope", "claims", "client_assertion", "client_assertion_type", "client_secret"]),
        label="form",
    )
    check(
        post(back, f"/{quote(tenant, safe='')}/oauth2/v2.0/devicecode", form, "application/x-www-form-urlencoded"),
        entra_json=True,
    )


@fuzz(150)
@given(data=st.data())
def test_raw_bodies_and_content_types(app_and_seeds: Clients, data: st.DataObject) -> None:
    back, front, s = app_and_seeds
    path = data.draw(
        st.sampled_from(
            [
                f"/{s.tenant_ids[0]}/oauth2/v2.0/token",
                "/common/oauth2/v2.0/devicecode",
                f"/{s.tenant_ids[0]}/login",
                "/common/consent",
                "/devicelogin",
                "/admin/users/enable",
                "/admin/consent/revoke",
                "/admin/signin",
                f"/{s.tenant_ids[0]}/adminconsent",
            ]
        ),
        label="path",
    )
    body = data.draw(
        st.binary(max_size=300)
        | st.text(max_size=300).map(str.encode)
        | st.sampled_from(
            [
                b"a=%ff%fe",
                b"a=%00",
                b"&&&=&=",
                b"=" * 100,
                b"a=1&" * 100,
                "txn=é".encode("latin-1"),
                b"\xef\xbb\xbfgrant_type=x",
            ]
        ),
        label="body",
    )
    ctype = data.draw(st.sampled_from(CONTENT_TYPES) | ascii_text | st.none(), label="content-type")
    client = back if "oauth2" in path else data.draw(st.sampled_from([back, front]))
    check(post(client, path, body, ctype), entra_json="oauth2" in path)


# -- pages, admin, managed identity, discovery ----------------------------------------------------


@fuzz(200)
@given(data=st.data())
def test_get_endpoints(app_and_seeds: Clients, data: st.DataObject) -> None:
    back, front, s = app_and_seeds
    tenant = quote(data.draw(path_segments(s), label="tenant"), safe="")
    path, names = data.draw(
        st.sampled_from(
            [
                (f"/{tenant}/oauth2/v2.0/authorize", AUTHORIZE_FIELDS),
                (f"/{tenant}/oauth2/v2.0/logout", ["post_logout_redirect_uri", "client_id", "state", "id_token_hint"]),
                (f"/{tenant}/v2.0/.well-known/openid-configuration", ["appid", "p"]),
                (f"/{tenant}/discovery/v2.0/keys", ["appid"]),
                ("/msi/token", ["api-version", "resource", "client_id", "principal_id", "object_id", "mi_res_id"]),
                ("/admin", ["done"]),
                (f"/{tenant}/v2.0/adminconsent", ["client_id", "scope", "redirect_uri", "state", "prompt"]),
                ("/devicelogin", ["user_code"]),
                ("/healthz", []),
            ]
        ),
        label="endpoint",
    )
    query = data.draw(pairs(s, names, short_junk) if names else st.just([]), label="query")
    qs = urlencode(query)
    if data.draw(st.booleans()):
        qs += "&" + data.draw(st.sampled_from(["%", "%ZZ", "a=%ff", "&&", "=x", "a==b", "%00=%00"]))
    headers = {}
    if data.draw(st.booleans(), label="identity header"):
        headers["X-IDENTITY-HEADER"] = data.draw(st.sampled_from(s.identity_headers) | ascii_text)
    client = data.draw(st.sampled_from([back, front]), label="channel")
    check(client.get(f"{path}?{qs}", headers=headers), entra_json=False)


@fuzz(150)
@given(data=st.data())
def test_redirect_uris(app_and_seeds: Clients, data: st.DataObject) -> None:
    """Registered clients with near-miss redirect URIs: matching must refuse, never fail."""
    _, front, s = app_and_seeds
    uri = data.draw(uri_variants(s.redirect_uris), label="uri")
    client_id = data.draw(st.sampled_from([*s.app_ids.values(), ""]), label="client_id")
    if data.draw(st.booleans(), label="logout"):
        r = front.get(
            f"/{s.tenant_ids[0]}/oauth2/v2.0/logout?"
            + urlencode({"post_logout_redirect_uri": uri, "client_id": client_id, "state": "s"})
        )
        check(r, entra_json=False)
        if r.status_code == 302:
            assert r.headers["location"].startswith(uri)
        return
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": uri,
        "scope": "openid",
        "code_challenge_method": "S256",
        "code_challenge": "A" * 43,
        "state": "s",
    }
    r = front.get(f"/{s.tenant_ids[0]}/oauth2/v2.0/authorize?{urlencode(query)}")
    check(r, entra_json=False)
    if r.status_code in (302, 303):
        assert r.headers["location"].startswith(uri)  # never anywhere but where the client asked


def post_page(
    client: TestClient, path: str, form: list[tuple[str, str]], origin: str | None, accept: str = "text/html"
) -> httpx.Response:
    headers = {"Accept": accept}
    if origin is not None:
        headers["Origin"] = origin
    return post(client, path, form, "application/x-www-form-urlencoded", headers)


@fuzz(150)
@given(data=st.data())
def test_sign_in_forms(app_and_seeds: Clients, data: st.DataObject) -> None:
    back, front, s = app_and_seeds
    tenant = quote(data.draw(path_segments(s), label="tenant"), safe="")
    path = data.draw(st.sampled_from([f"/{tenant}/login", f"/{tenant}/consent"]), label="path")
    form = data.draw(pairs(s, ["txn", "username", "password", "decision"]), label="form")
    client = data.draw(st.sampled_from([front, back]), label="channel")
    check(post_page(client, path, form, data.draw(st.sampled_from([None, FRONT, BACK]))), entra_json=False)


@fuzz(150)
@given(data=st.data())
def test_device_login_codes(app_and_seeds: Clients, data: st.DataObject) -> None:
    _, front, s = app_and_seeds
    assert any(d.status == "pending" for d in s.emu.store.devices.values())  # something to compare against
    code = data.draw(st.text(max_size=20) | nasty | ascii_text | st.sampled_from(s.user_codes), label="user_code")
    check(post_page(front, "/devicelogin", [("user_code", code)], None), entra_json=False)


@fuzz(150)
@given(data=st.data())
def test_admin_forms(app_and_seeds: Clients, data: st.DataObject) -> None:
    back, front, s = app_and_seeds
    path = data.draw(
        st.sampled_from(
            [
                "/admin/users/disable",
                "/admin/users/enable",
                "/admin/users/revoke-sessions",
                "/admin/consent/grant",
                "/admin/consent/revoke",
                "/admin/keys/rotate",
                "/admin/keys/withdraw-retired",
            ]
        ),
        label="path",
    )
    # Key rotation makes a 2048-bit key: keep it to a few examples so the run stays short.
    if path.startswith("/admin/keys") and data.draw(st.integers(0, 4)):
        return
    form = data.draw(pairs(s, ["upn", "tenant", "client", "resource"]), label="form")
    origin = data.draw(
        st.sampled_from([None, FRONT, BACK, "https://evil.example", "null", FRONT + "/"]), label="origin"
    )
    client = data.draw(st.sampled_from([front, back]), label="channel")
    client.cookies.clear()
    if data.draw(st.booleans(), label="as the administrator"):
        # The forms behind the sign-in, not only the sign-in's refusals (an earlier example may have
        # disabled the administrator, or revoked their sessions: then these are refusals too).
        client.post("/admin/signin", data={"username": "admin@contoso.test", "password": s.password})
    r = post_page(client, path, form, origin, data.draw(st.sampled_from(["application/json", "text/html"])))
    check(r, entra_json=False)
    if origin not in (None, FRONT, BACK):
        # A cross-site form post never reaches the admin actions.
        assert r.status_code == 403 and r.json()["error"] == "access_denied"


# -- regressions found by the fuzzing above ---------------------------------------------------------


def test_device_login_with_a_non_ascii_code(app_and_seeds: Clients) -> None:
    """hmac.compare_digest refuses non-ASCII str: a typed "É" must be an invalid code, not a 500."""
    _, front, s = app_and_seeds
    r = front.post("/devicelogin", data={"user_code": "ÉÉÉ-ÉÉÉ"})
    assert r.status_code == 400 and "not valid" in r.text
    assert s.emu.store.devices  # a pending device code existed to compare against


@pytest.mark.parametrize("thumbprint", [12, ["x"], {"a": 1}, None, True])
def test_certificate_assertion_with_a_non_string_thumbprint(app_and_seeds: Clients, thumbprint: object) -> None:
    back, _, s = app_and_seeds
    for name in ("x5t#S256", "x5t"):
        header = b64(json.dumps({"alg": "RS256", name: thumbprint}).encode())
        assertion = f"{header}.{b64(json.dumps({'sub': s.app_ids['daemon']}).encode())}.{b64(b'sig')}"
        r = back.post(
            f"/{s.tenant_ids[0]}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": s.app_ids["daemon"],
                "client_assertion": assertion,
                "client_assertion_type": ASSERTION_TYPE,
                "scope": f"api://{s.app_ids['api']}/.default",
            },
        )
        check(r, entra_json=True)
        assert r.status_code == 401 and r.json()["error_codes"] == [700027]


@pytest.mark.parametrize("claims", ["[" * 5000, '{"access_token":' + '{"a":' * 3000])
def test_deeply_nested_claims_request(app_and_seeds: Clients, claims: str) -> None:
    """A `claims` parameter nested past the JSON parser's recursion limit declares nothing; no 500."""
    back, _, s = app_and_seeds
    # A fresh credential: the admin fuzzing may have rotated the key that signed the seeded one.
    minted = back.get(
        "/msi/token",
        headers={"X-IDENTITY-HEADER": s.emu.identity_headers["daemon"]},
        params={"api-version": "2019-08-01", "resource": "api://AzureADTokenExchange"},
    )
    credential = minted.json()["access_token"]
    r = back.post(
        f"/{s.tenant_ids[0]}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": s.app_ids["daemon"],
            "client_assertion": credential,
            "client_assertion_type": ASSERTION_TYPE,
            "scope": f"api://{s.app_ids['api']}/.default",
            "claims": claims,
        },
    )
    assert r.status_code == 200, r.text
    assert "xms_cc" not in jwt_claims(r.json()["access_token"])


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def test_non_loopback_peer_is_refused(app_and_seeds: Clients) -> None:
    back, _, _ = app_and_seeds
    with TestClient(back.app, base_url=BACK, client=("192.0.2.10", 50000)) as remote:
        r = remote.get("/healthz")
    assert r.status_code == 403
    with TestClient(back.app, base_url=BACK, client=LOOPBACK_PEER) as local:
        assert local.get("/healthz").status_code == 200
