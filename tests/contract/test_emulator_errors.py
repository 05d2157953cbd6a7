"""The emulator's refusals, over real HTTPS: each negative case answers in Entra's own error shape.

Apps are tested against these shapes (status, `error`, AADSTS code, trace and correlation ids), so
they must be what Entra sends: a client's error handling written against the emulator has to hold
against the real service. Requests are made with plain httpx (the back channel over https, the
pages over http) and, where a flow is naturally MSAL's, with MSAL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.signin import FormBrowser, parse_forms

from tests.support.launch import LiveEmulator
from tests.support.tokens import apis_at, build_access_token_expired

from .helpers import api_scope, certificate_credential, downstream_scope, sign_in, web_client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
WEB_REDIRECT = "http://localhost:8000/auth/callback"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"

# -- the shape ------------------------------------------------------------------------------------


def assert_entra_error(
    response_or_body: httpx.Response | dict[str, Any], status: int | None, error: str, code: int
) -> dict[str, Any]:
    """An error as Entra answers it. A dict (an MSAL result) carries no HTTP status: pass None."""
    if isinstance(response_or_body, httpx.Response):
        r = response_or_body
        assert r.status_code == status, f"{r.status_code} {r.text[:500]}"
        assert r.headers["content-type"].startswith("application/json"), r.headers
        assert "no-store" in r.headers.get("cache-control", ""), r.headers
        body: dict[str, Any] = r.json()
    else:
        assert status is None, "an MSAL result has no HTTP status to check"
        body = response_or_body
    assert body.get("error") == error, body
    assert str(body.get("error_description", "")).startswith(f"AADSTS{code}:"), body
    assert body.get("error_codes") == [code], body
    for key in ("trace_id", "correlation_id", "timestamp"):
        assert body.get(key), f"{key} missing: {body}"
    return body


# -- requests as the services and a browser make them ---------------------------------------------


def tid(emu: LiveEmulator, tenant: str = "contoso") -> str:
    return str(emu.info["tenants"][tenant])


def token_url(emu: LiveEmulator, tenant: str = "contoso") -> str:
    return f"{emu.base}/{emu.info['tenants'].get(tenant, tenant)}/oauth2/v2.0/token"


def post_token(emu: LiveEmulator, form: dict[str, str], tenant: str = "contoso") -> httpx.Response:
    with emu.http() as client:
        return client.post(token_url(emu, tenant), data=form)


def mi_token(emu: LiveEmulator, service: str, resource: str = TOKEN_EXCHANGE_AUDIENCE) -> str:
    """A managed identity token, fetched as azure-identity fetches it on App Service."""
    return emu.managed_identity_token(service, resource)


def client_auth(emu: LiveEmulator, app: str, identity: str | None = None) -> dict[str, str]:
    """The app's client authentication: a managed identity token as its federated credential."""
    return {
        "client_id": emu.app_id(app),
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": mi_token(emu, identity or app),
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def authorize_url(
    emu: LiveEmulator, scopes: list[str], *, client: str = "web", tenant: str = "contoso", **params: str | None
) -> tuple[str, str, str]:
    """An auth code + PKCE request as MSAL builds it; a None parameter is left out.

    Returns (url, state, code_verifier).
    """
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(12)
    query: dict[str, str | None] = {
        "client_id": emu.app_id(client),
        "response_type": "code",
        "redirect_uri": WEB_REDIRECT,
        "scope": " ".join(scopes),
        "state": state,
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
        **params,
    }
    url = f"{emu.front}/{emu.info['tenants'].get(tenant, tenant)}/oauth2/v2.0/authorize?"
    return url + urlencode({k: v for k, v in query.items() if v is not None}), state, verifier


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def user_scopes(emu: LiveEmulator, value: str = "Tasks.Read") -> list[str]:
    return [api_scope(emu, value), "openid", "offline_access"]


def get_code(
    emu: LiveEmulator,
    user: str = "alice@contoso.test",
    scopes: list[str] | None = None,
    browser: FormBrowser | None = None,
) -> tuple[str, str]:
    """A person signs in (and consents) for the web app; -> (code, code_verifier)."""
    url, state, verifier = authorize_url(emu, scopes or user_scopes(emu))
    response = (browser or FormBrowser()).sign_in(url, user, emu.password)
    assert response.status_code == 302, response.text[:500]
    query = query_of(response.headers["location"])
    assert query["state"] == state
    return query["code"], verifier


def redeem(
    emu: LiveEmulator, code: str, verifier: str | None, redirect_uri: str | None = WEB_REDIRECT, client: str = "web"
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, **client_auth(emu, client)}
    if verifier is not None:
        form["code_verifier"] = verifier
    if redirect_uri is not None:
        form["redirect_uri"] = redirect_uri
    return post_token(emu, form)


def refresh(emu: LiveEmulator, refresh_token: str, scope: str) -> httpx.Response:
    """As MSAL refreshes: the resource scope plus the OpenID ones, so a new refresh token comes back."""
    return post_token(
        emu,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "scope": f"{scope} openid offline_access",
            **client_auth(emu, "web"),
        },
    )


def user_tokens(emu: LiveEmulator, user: str = "alice@contoso.test", value: str = "Tasks.Read") -> dict[str, Any]:
    code, verifier = get_code(emu, user, user_scopes(emu, value))
    r = redeem(emu, code, verifier)
    assert r.status_code == 200, r.text
    tokens: dict[str, Any] = r.json()
    return tokens


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def page_text(response: httpx.Response) -> str:
    return parse_forms(response.text)[1]


@pytest.fixture(scope="module")
def alice_api_token(live: LiveEmulator) -> str:
    """A delegated token for the api, as the web app sends it: what OBO exchanges."""
    return str(user_tokens(live)["access_token"])


# -- client authentication ------------------------------------------------------------------------


def test_unknown_client_is_unauthorized_client(live: LiveEmulator) -> None:
    stranger = "00000000-1111-2222-3333-444444444444"
    r = post_token(
        live, {"grant_type": "client_credentials", "client_id": stranger, "scope": api_scope(live, ".default")}
    )
    body = assert_entra_error(r, 400, "unauthorized_client", 700016)
    assert stranger in body["error_description"]


def test_unknown_client_at_authorize_stays_on_the_emulator(live: LiveEmulator) -> None:
    url, _, _ = authorize_url(live, user_scopes(live), client_id="00000000-1111-2222-3333-444444444444")
    r = httpx.get(url)
    assert r.status_code == 400 and "location" not in r.headers
    assert "AADSTS700016" in page_text(r)


def test_confidential_client_without_a_credential(live: LiveEmulator) -> None:
    r = post_token(
        live,
        {"grant_type": "client_credentials", "client_id": live.app_id("daemon"), "scope": api_scope(live, ".default")},
    )
    assert_entra_error(r, 401, "invalid_client", 7000218)
    assert r.headers.get("www-authenticate")


def test_client_secret_is_refused(live: LiveEmulator) -> None:
    # No registration declares a secret: the sample's confidential clients are secretless.
    r = post_token(
        live,
        {
            "grant_type": "client_credentials",
            "client_id": live.app_id("daemon"),
            "client_secret": "guessed-secret",  # pragma: allowlist secret
            "scope": api_scope(live, ".default"),
        },
    )
    assert_entra_error(r, 401, "invalid_client", 7000215)


@pytest.mark.parametrize("credential", ["client_assertion", "client_secret"])
def test_public_client_presenting_a_credential(live: LiveEmulator, credential: str) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": live.info["cli_client_id"],
        "scope": api_scope(live, ".default"),
    }
    if credential == "client_assertion":
        form.update(client_assertion=mi_token(live, "web"), client_assertion_type=ASSERTION_TYPE)
    else:
        form["client_secret"] = "anything"  # pragma: allowlist secret
    assert_entra_error(post_token(live, form), 401, "invalid_client", 700025)


def test_public_client_cannot_use_client_credentials(live: LiveEmulator) -> None:
    r = post_token(
        live,
        {
            "grant_type": "client_credentials",
            "client_id": live.info["cli_client_id"],
            "scope": api_scope(live, ".default"),
        },
    )
    assert_entra_error(r, 401, "invalid_client", 7000218)


def test_federated_assertion_from_another_managed_identity(live: LiveEmulator) -> None:
    # The web app's managed identity token is not a credential of the api registration.
    form = {
        "grant_type": "client_credentials",
        "scope": f"api://{live.app_id('downstream-api')}/.default",
        **client_auth(live, "api", identity="web"),
    }
    body = assert_entra_error(post_token(live, form), 401, "invalid_client", 70021)
    assert "Assertion Subject" in body["error_description"]


def test_federated_assertion_with_the_wrong_audience(live: LiveEmulator) -> None:
    # The api's own managed identity, but a token minted for Microsoft Graph rather than for token exchange.
    form = {
        "grant_type": "client_credentials",
        "scope": f"api://{live.app_id('downstream-api')}/.default",
        "client_id": live.app_id("api-app-only"),
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": mi_token(live, "api", resource="https://graph.microsoft.com"),
    }
    body = assert_entra_error(post_token(live, form), 401, "invalid_client", 700212)
    assert live.app_id("graph") in body["error_description"]  # the audience it did present


@pytest.mark.parametrize("assertion_type", [None, "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"])
def test_assertion_with_the_wrong_assertion_type(live: LiveEmulator, assertion_type: str | None) -> None:
    form = {"grant_type": "client_credentials", "scope": api_scope(live, ".default"), **client_auth(live, "daemon")}
    if assertion_type is None:
        del form["client_assertion_type"]
    else:
        form["client_assertion_type"] = assertion_type
    body = assert_entra_error(post_token(live, form), 400, "invalid_request", 900144)
    assert "client_assertion_type" in body["error_description"]


def test_certificate_assertion_signed_by_an_unregistered_certificate(live: LiveEmulator, tmp_path: Path) -> None:
    certificate_credential(live, "daemon", tmp_path)  # a registered certificate exists, just not this one
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    daemon = live.app_id("daemon")
    now = int(time.time())
    assertion = jwt.encode(
        {
            "aud": token_url(live),
            "iss": daemon,
            "sub": daemon,
            "jti": secrets.token_hex(8),
            "nbf": now,
            "exp": now + 600,
        },
        key,
        algorithm="RS256",
        headers={"x5t#S256": b64url(secrets.token_bytes(32)), "typ": "JWT"},
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": daemon,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": api_scope(live, ".default"),
    }
    assert_entra_error(post_token(live, form), 401, "invalid_client", 700027)


# -- sign-in pages ------------------------------------------------------------------------------


def login_page(emu: LiveEmulator, browser: FormBrowser, scopes: list[str] | None = None) -> httpx.Response:
    url, _, _ = authorize_url(emu, scopes or user_scopes(emu), prompt="login")
    page = browser.http.get(url)
    assert page.status_code == 200 and "password" in parse_forms(page.text)[0][0].fields
    return page


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [
        ("alice@contoso.test", "wrong-password", 50126),
        ("nobody@contoso.test", None, 50034),
    ],
)
def test_login_page_refuses_bad_credentials(live: LiveEmulator, username: str, password: str | None, code: int) -> None:
    browser = FormBrowser()
    page = login_page(live, browser)
    r = browser.submit(page, {"username": username, "password": password or live.password})
    assert r.status_code == 400 and "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    assert f"AADSTS{code}" in page_text(r)
    assert "password" in parse_forms(r.text)[0][0].fields  # the person may try again
    assert "emulator_session" not in r.headers.get("set-cookie", "")


def test_refresh_for_a_scope_the_user_has_not_consented_to(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = web_client(fresh_emulator, monkeypatch)
    first = sign_in(fresh_emulator, app, "alice@contoso.test", [api_scope(fresh_emulator, "Tasks.Read")])
    assert "refresh_token" in first, first
    account = app.get_accounts(username="alice@contoso.test")[0]
    result = app.acquire_token_silent_with_error([api_scope(fresh_emulator, "Tasks.ReadWrite")], account=account)
    assert result is not None and "access_token" not in result
    body = assert_entra_error(result, None, "invalid_grant", 65001)
    assert body["suberror"] == "consent_required"
    # The same refusal on the wire, without MSAL in between.
    r = refresh(fresh_emulator, first["refresh_token"], api_scope(fresh_emulator, "Tasks.ReadWrite"))
    assert assert_entra_error(r, 400, "invalid_grant", 65001)["suberror"] == "consent_required"
    # What was consented to still refreshes.
    again = refresh(fresh_emulator, first["refresh_token"], api_scope(fresh_emulator, "Tasks.Read"))
    assert again.status_code == 200, again.text


def test_prompt_none_for_an_unconsented_scope_gives_consent_required(fresh_emulator: LiveEmulator) -> None:
    emu, browser = fresh_emulator, FormBrowser()
    get_code(emu, scopes=user_scopes(emu, "Tasks.Read"), browser=browser)  # signed in, Tasks.Read consented
    url, state, _ = authorize_url(emu, user_scopes(emu, "Tasks.ReadWrite"), prompt="none")
    r = browser.http.get(url)
    assert r.status_code == 302
    assert r.headers["location"].startswith(WEB_REDIRECT + "?")
    query = query_of(r.headers["location"])
    assert query["error"] == "consent_required"
    assert query["error_description"].startswith("AADSTS65001:")
    assert query["state"] == state
    assert "code" not in query


def test_prompt_none_without_a_session_redirects_login_required(live: LiveEmulator) -> None:
    url, state, _ = authorize_url(live, user_scopes(live), prompt="none")
    r = httpx.get(url)
    assert r.status_code == 302
    query = query_of(r.headers["location"])
    assert (query["error"], query["state"]) == ("login_required", state)
    assert query["error_description"].startswith("AADSTS50058:")


def test_admin_only_scope_shows_need_admin_approval(live: LiveEmulator) -> None:
    url, state, _ = authorize_url(live, user_scopes(live, "Tasks.Read.All"))
    r = FormBrowser().sign_in(url, "alice@contoso.test", live.password)
    assert r.status_code == 403 and "location" not in r.headers
    text = page_text(r)
    assert "Need admin approval" in text and "AADSTS90094" in text and "Tasks.Read.All" in text
    back = [h for h in links(r.text) if h.startswith(WEB_REDIRECT + "?")]
    assert len(back) == 1, links(r.text)
    query = query_of(back[0])
    assert query["error"] == "access_denied" and query["state"] == state
    assert query["error_description"].startswith("AADSTS90094:")
    assert "code" not in query


# -- authorization codes --------------------------------------------------------------------------


def test_code_reuse_is_refused_and_revokes_what_the_code_produced(live: LiveEmulator) -> None:
    code, verifier = get_code(live)
    first = redeem(live, code, verifier)
    assert first.status_code == 200, first.text
    rt = first.json()["refresh_token"]
    rotated = refresh(live, rt, api_scope(live, "Tasks.Read"))
    assert rotated.status_code == 200, rotated.text
    rt2 = rotated.json()["refresh_token"]

    assert_entra_error(redeem(live, code, verifier), 400, "invalid_grant", 54005)
    # The replay means the code leaked: every refresh token of that sign-in is now void.
    for token in (rt, rt2):
        assert_entra_error(refresh(live, token, api_scope(live, "Tasks.Read")), 400, "invalid_grant", 9002313)


def test_expired_code(emulator_factory: Callable[..., LiveEmulator]) -> None:
    emu = emulator_factory(code_lifetime="0")
    code, verifier = get_code(emu)
    assert_entra_error(redeem(emu, code, verifier), 400, "invalid_grant", 70008)


def test_pkce_verifier_mismatch(live: LiveEmulator) -> None:
    code, _ = get_code(live)
    assert_entra_error(redeem(live, code, secrets.token_urlsafe(48)), 400, "invalid_grant", 501481)


def test_missing_code_verifier(live: LiveEmulator) -> None:
    code, _ = get_code(live)
    body = assert_entra_error(redeem(live, code, None), 400, "invalid_request", 900144)
    assert "code_verifier" in body["error_description"]


@pytest.mark.parametrize(
    "redirect_uri", ["http://localhost:8000/other", None, "http://evil.example\\@localhost:8000/auth/callback"]
)
def test_redirect_uri_mismatch_at_redemption(live: LiveEmulator, redirect_uri: str | None) -> None:
    code, verifier = get_code(live)
    assert_entra_error(redeem(live, code, verifier, redirect_uri=redirect_uri), 400, "invalid_grant", 50011)


def test_code_is_bound_to_its_client(live: LiveEmulator) -> None:
    code, verifier = get_code(live)
    r = post_token(
        live,
        {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": WEB_REDIRECT,
            "client_id": live.info["cli_client_id"],
        },
    )
    assert_entra_error(r, 400, "invalid_grant", 70000)


# -- authorize requests ---------------------------------------------------------------------------


# Shapes a URL parser may read as the registered loopback host while a browser goes elsewhere (WHATWG URL
# parsing reads "\\" as "/" in http URLs, so "evil.example" is the host), or that hide another host in
# userinfo, a fragment, an encoded character or whitespace. Compared as strings, none is registered.
PARSER_DIFFERENTIALS = [
    "http://evil.example\\@localhost:8000/auth/callback",
    "http://evil.example\\@localhost/auth/callback",
    "http://localhost:8000\\@evil.example/auth/callback",
    "http:\\\\evil.example\\@localhost:8000/auth/callback",
    "http://evil.example@localhost:8000/auth/callback",
    "http://localhost:8000@localhost:9000/auth/callback",
    "http://localhost:8000%40evil.example/auth/callback",
    "http://localhost:8000/auth/callback#@evil.example",
    "http://localhost:8000/auth/callback\\..\\..\\evil",
    "http://localhost:8000/auth/callback%0d%0aLocation:%20https://evil.example",
    "http://localhost:8000/auth/callback\n",
    " http://localhost:8000/auth/callback",
    "http://localhost:8000/auth/callback\t",
    "http://LOCALHOST:8000/auth/callback",
    "http://localhost.:8000/auth/callback",
    "http://localhost.evil.example:8000/auth/callback",
    "http://[::1]:8000/auth/callback",
    "http://localhost:8000/auth/c\u0430llback",
]


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/auth/callback",
        "http://localhost:8000/auth/callback/extra",
        "http://localhost:8000/auth/callback?next=https://evil.example",
        "http://localhost:8000/auth/callback#frag",
        "http://localhost:8000/Auth/Callback",
        "https://localhost:8000/auth/callback",
        "http://127.0.0.1:8000/auth/callback",
        "http://localhost:8000@evil.example/auth/callback",
        # Another loopback port is accepted (RFC 8252); a port that is no port is not, and is no crash either.
        "http://localhost:99999/auth/callback",
        "http://localhost:abc/auth/callback",
        "http://[::1/auth/callback",
        "http://localhost:0/auth/callback",
        *PARSER_DIFFERENTIALS,
    ],
)
def test_redirect_uri_mismatch_at_authorize_stays_on_the_emulator(live: LiveEmulator, redirect_uri: str) -> None:
    url, _, _ = authorize_url(live, user_scopes(live), redirect_uri=redirect_uri)
    r = httpx.get(url)
    # Not a redirect: sending the error to an unregistered address would make the emulator an open redirector.
    assert r.status_code == 400 and "location" not in r.headers
    assert "AADSTS50011" in page_text(r)


def test_missing_redirect_uri_at_authorize(live: LiveEmulator) -> None:
    url, _, _ = authorize_url(live, user_scopes(live), redirect_uri=None)
    r = httpx.get(url)
    assert r.status_code == 400 and "location" not in r.headers
    assert "AADSTS900971" in page_text(r)


@pytest.mark.parametrize(
    ("params", "error", "code"),
    [
        ({"response_type": "token"}, "unsupported_response_type", 700054),
        ({"response_type": "id_token"}, "unsupported_response_type", 700054),
        ({"response_type": "code id_token"}, "unsupported_response_type", 700054),
        ({"response_type": None}, "unsupported_response_type", 700054),
        ({"code_challenge_method": None}, "invalid_request", 9002325),
        ({"code_challenge_method": "plain"}, "invalid_request", 9002325),
        ({"code_challenge": None}, "invalid_request", 9002325),
        ({"code_challenge": "too-short"}, "invalid_request", 9002325),
        ({"code_challenge": "A" * 43 + "\n"}, "invalid_request", 9002325),
        ({"code_challenge": "A" * 42 + "="}, "invalid_request", 9002325),
        ({"response_mode": "fragment"}, "invalid_request", 9002313),
        ({"scope": "api://{api}/Tasks.Delete openid"}, "invalid_scope", 650053),
        ({"scope": ""}, "invalid_scope", 70011),
    ],
)
def test_authorize_errors_go_back_to_the_registered_redirect_uri(
    live: LiveEmulator,
    params: dict[str, str | None],
    error: str,
    code: int,
) -> None:
    params = {k: v.format(api=live.app_id("api")) if v else v for k, v in params.items()}
    url, state, _ = authorize_url(live, user_scopes(live), **params)
    r = httpx.get(url)
    assert r.status_code == 302, r.text[:300]
    assert r.headers["location"].startswith(WEB_REDIRECT + "?")
    query = query_of(r.headers["location"])
    assert query["error"] == error and query["state"] == state
    assert query["error_description"].startswith(f"AADSTS{code}:")
    assert "code" not in query


# -- scopes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "error", "code"),
    [
        ("api://{api}/Tasks.Delete", "invalid_scope", 650053),
        ("api://00000000-0000-0000-0000-00000000dead/.default", "invalid_resource", 500011),
        ("https://unknown.example/.default", "invalid_resource", 500011),
        ("api://{api}/.default api://{downstream}/.default", "invalid_scope", 28000),
        ("api://{api}/Tasks.Read", "invalid_scope", 1002012),
        ("openid", "invalid_scope", 1002012),
        ("", "invalid_request", 900144),
    ],
)
def test_client_credentials_scope_errors(live: LiveEmulator, scope: str, error: str, code: int) -> None:
    form = {
        "grant_type": "client_credentials",
        **client_auth(live, "daemon"),
        "scope": scope.format(api=live.app_id("api"), downstream=live.app_id("downstream-api")),
    }
    assert_entra_error(post_token(live, form), 400, error, code)


def test_device_code_request_for_two_resources(live: LiveEmulator) -> None:
    with live.http() as client:
        r = client.post(
            f"{live.base}/{tid(live)}/oauth2/v2.0/devicecode",
            data={
                "client_id": live.info["cli_client_id"],
                "scope": f"{api_scope(live, 'Tasks.Read')} {downstream_scope(live, 'Records.Read')}",
            },
        )
    assert_entra_error(r, 400, "invalid_scope", 28000)


# -- on-behalf-of -----------------------------------------------------------------------------------


def obo(emu: LiveEmulator, assertion: str, client: str = "api", scope: str | None = None) -> httpx.Response:
    return post_token(
        emu,
        {
            "grant_type": JWT_BEARER,
            "requested_token_use": "on_behalf_of",
            "assertion": assertion,
            "scope": scope or downstream_scope(emu, "Records.Read"),
            **client_auth(emu, client),
        },
    )


def test_obo_works_with_the_users_token(live: LiveEmulator, alice_api_token: str) -> None:
    # The positive control for the refusals below.
    assert obo(live, alice_api_token).status_code == 200


def test_obo_with_an_app_only_token(live: LiveEmulator) -> None:
    daemon = post_token(
        live, {"grant_type": "client_credentials", "scope": api_scope(live, ".default"), **client_auth(live, "daemon")}
    )
    assert daemon.status_code == 200, daemon.text
    assert_entra_error(obo(live, daemon.json()["access_token"]), 400, "invalid_grant", 5000224)


def test_obo_with_a_token_for_another_audience(live: LiveEmulator, alice_api_token: str) -> None:
    # A token for the api, presented by downstream-api as if it had been sent to it.
    r = obo(live, alice_api_token, client="downstream-api", scope=api_scope(live, "Tasks.Read"))
    assert_entra_error(r, 400, "invalid_grant", 500131)


def _tampered(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def _forged(live: LiveEmulator, token: str, how: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    if how == "tampered":
        return _tampered(token, scp="Tasks.Read Tasks.ReadWrite")  # a scope the user never granted
    if how == "foreign key, emulator kid":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    if how == "unknown kid":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "not-a-published-kid"})
    if how == "alg none":
        head = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
        return f"{head}.{b64url(json.dumps(claims).encode())}."
    if how == "hs256 with the public key":
        with live.http() as client:
            jwk = next(
                k for k in client.get(f"{live.base}/{tid(live)}/discovery/v2.0/keys").json()["keys"] if k["kid"] == kid
            )
        # The classic algorithm confusion: the published key used as an HMAC secret.
        secret = jwk["n"].encode()
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        body = b64url(json.dumps(claims).encode())
        sig = b64url(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        return f"{head}.{body}.{sig}"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["tampered", "foreign key, emulator kid", "unknown kid", "alg none", "hs256 with the public key"]
)
def test_obo_with_a_forged_assertion(live: LiveEmulator, alice_api_token: str, how: str) -> None:
    assert_entra_error(obo(live, _forged(live, alice_api_token, how)), 400, "invalid_grant", 50013)


@pytest.mark.parametrize(("seconds_ago", "exchanged"), [(30, True), (600, False)])
def test_obo_allows_five_minutes_of_clock_skew_and_not_more(
    live: LiveEmulator, seconds_ago: int, exchanged: bool
) -> None:
    # An api accepts a token a little past exp (its leeway); the token service must then exchange it too.
    assertion = build_access_token_expired(live, apis_at("https://a", "https://d")["api"], seconds_ago=seconds_ago)
    r = obo(live, assertion)
    if exchanged:
        assert r.status_code == 200, r.text
    else:
        assert_entra_error(r, 400, "invalid_grant", 500133)


def test_obo_with_a_malformed_assertion(live: LiveEmulator) -> None:
    assert_entra_error(obo(live, "not-a-jwt"), 400, "invalid_grant", 50027)


def test_obo_without_requested_token_use(live: LiveEmulator, alice_api_token: str) -> None:
    form = {
        "grant_type": JWT_BEARER,
        "assertion": alice_api_token,
        "scope": downstream_scope(live, "Records.Read"),
        **client_auth(live, "api"),
    }
    assert_entra_error(post_token(live, form), 400, "invalid_request", 900144)


# -- the user's account -------------------------------------------------------------------------


def test_disabled_user_cannot_sign_in_and_loses_refresh(fresh_emulator: LiveEmulator) -> None:
    emu = fresh_emulator
    rt = user_tokens(emu)["refresh_token"]
    emu.admin("users/disable", upn="alice@contoso.test")

    browser = FormBrowser()
    r = browser.submit(login_page(emu, browser), {"username": "alice@contoso.test", "password": emu.password})
    assert r.status_code == 400 and "location" not in r.headers
    assert "AADSTS50057" in page_text(r)
    assert_entra_error(refresh(emu, rt, api_scope(emu, "Tasks.Read")), 400, "invalid_grant", 50057)

    emu.admin("users/enable", upn="alice@contoso.test")
    # Enabling again restores the account, not the sign-in sessions that disabling ended.
    assert refresh(emu, rt, api_scope(emu, "Tasks.Read")).status_code == 400
    assert (
        FormBrowser().sign_in(authorize_url(emu, user_scopes(emu))[0], "alice@contoso.test", emu.password).status_code
        == 302
    )


# -- the token endpoint's own refusals ------------------------------------------------------------


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:saml2-bearer"])
def test_unsupported_grant_type(live: LiveEmulator, grant_type: str) -> None:
    r = post_token(
        live,
        {
            "grant_type": grant_type,
            "client_id": live.info["cli_client_id"],
            "username": "alice@contoso.test",
            "password": live.password,
            "scope": "openid",
        },
    )
    assert_entra_error(r, 400, "unsupported_grant_type", 70003)


def test_missing_grant_type(live: LiveEmulator) -> None:
    r = post_token(live, {"client_id": live.info["cli_client_id"], "scope": "openid"})
    assert_entra_error(r, 400, "invalid_request", 900144)


@pytest.mark.parametrize(
    "tenant", ["nosuchtenant.onmicrosoft.com", "00000000-0000-0000-0000-000000000000", "consumers"]
)
def test_unknown_tenant(live: LiveEmulator, tenant: str) -> None:
    with live.http() as client:
        discovery = client.get(f"{live.base}/{tenant}/v2.0/.well-known/openid-configuration")
        keys = client.get(f"{live.base}/{tenant}/discovery/v2.0/keys")
        token = client.post(
            f"{live.base}/{tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "scope": api_scope(live, ".default"),
                **client_auth(live, "daemon"),
            },
        )
    for r in (discovery, keys, token):
        body = assert_entra_error(r, 400, "invalid_tenant", 90002)
        assert tenant in body["error_description"]
    page = httpx.get(authorize_url(live, user_scopes(live), tenant=tenant)[0])
    assert page.status_code == 400 and "AADSTS90002" in page_text(page)


@pytest.mark.parametrize("tenant", ["common", "organizations"])
def test_client_credentials_need_a_tenant(live: LiveEmulator, tenant: str) -> None:
    # An app-only token belongs to one tenant: the multi-tenant endpoints cannot say which.
    form = {"grant_type": "client_credentials", "scope": api_scope(live, ".default"), **client_auth(live, "daemon")}
    assert_entra_error(post_token(live, form, tenant=tenant), 400, "invalid_request", 50059)


@pytest.mark.parametrize("path", ["oauth2/v2.0/token", "oauth2/v2.0/devicecode"])
def test_token_endpoints_refuse_the_http_front_channel(live: LiveEmulator, path: str) -> None:
    r = httpx.post(
        f"{live.front}/{tid(live)}/{path}",
        data={"grant_type": "client_credentials", "client_id": live.info["cli_client_id"], "scope": "openid"},
    )
    assert_entra_error(r, 403, "invalid_request", 9002313)


def test_device_code_pending_then_single_use(live: LiveEmulator) -> None:
    cli = live.info["cli_client_id"]
    with live.http() as client:
        flow = client.post(
            f"{live.base}/{tid(live)}/oauth2/v2.0/devicecode",
            data={"client_id": cli, "scope": f"{api_scope(live, 'Tasks.Read')} openid offline_access"},
        ).json()
        poll = {"grant_type": DEVICE_CODE, "client_id": cli, "device_code": flow["device_code"]}
        assert_entra_error(post_token(live, poll), 400, "authorization_pending", 70016)
        assert_entra_error(post_token(live, {**poll, "device_code": "made-up"}), 400, "invalid_grant", 70000)
        done = FormBrowser().approve_device(
            flow["verification_uri"], flow["user_code"], "alice@contoso.test", live.password
        )
        assert done.status_code == 200
        # The device code belongs to the client that asked for it.
        other = {**poll, "client_id": live.app_id("web"), **client_auth(live, "web")}
        assert_entra_error(post_token(live, other), 400, "invalid_grant", 70000)
        first = post_token(live, poll)
        assert first.status_code == 200 and "access_token" in first.json(), first.text
        assert_entra_error(post_token(live, poll), 400, "invalid_grant", 70000)
        # The user code is spent too: entering it again leads nowhere.
        page = FormBrowser().submit(client.get(flow["verification_uri"]), {"user_code": flow["user_code"]})
        assert page.status_code == 400 and "not valid" in page_text(page)


def test_device_code_for_a_client_without_public_flows(live: LiveEmulator) -> None:
    with live.http() as client:
        r = client.post(
            f"{live.base}/{tid(live)}/oauth2/v2.0/devicecode",
            data={"scope": api_scope(live, "Tasks.Read"), **client_auth(live, "web")},
        )
    assert_entra_error(r, 401, "invalid_client", 7000218)


# -- the managed identity endpoint ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("no header", 401, "invalid_request"),
        ("wrong header", 401, "invalid_request"),
        ("unknown resource", 400, "invalid_resource"),
        ("another identity's client_id", 400, "invalid_request"),
        ("another identity's principal_id", 400, "invalid_request"),
        ("wrong api-version", 400, "invalid_request"),
    ],
)
def test_managed_identity_endpoint_refusals(live: LiveEmulator, case: str, status: int, error: str) -> None:
    from identity_emulator.manifest import load_directory
    from identity_emulator.settings import EmulatorSettings

    settings = EmulatorSettings(state_dir=live.state_dir)
    api_mi = load_directory(settings.manifest, settings.directory).managed_identities["api"]
    params = {"api-version": "2019-08-01", "resource": TOKEN_EXCHANGE_AUDIENCE}
    headers = {"X-IDENTITY-HEADER": live.identity_header("web")}
    if case == "no header":
        headers = {}
    elif case == "wrong header":
        headers = {"X-IDENTITY-HEADER": live.identity_header("web")[:-2] + "xx"}
    elif case == "unknown resource":
        params["resource"] = "https://vault.azure.net"
    elif case == "another identity's client_id":
        params["client_id"] = api_mi.client_id
    elif case == "another identity's principal_id":
        params["principal_id"] = api_mi.object_id
    else:
        params["api-version"] = "2017-09-01"
    with live.http() as client:
        r = client.get(f"{live.base}/msi/token", params=params, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert "access_token" not in r.json()


def test_managed_identity_endpoint_refuses_the_http_front_channel(live: LiveEmulator) -> None:
    r = httpx.get(
        f"{live.front}/msi/token",
        params={"api-version": "2019-08-01", "resource": TOKEN_EXCHANGE_AUDIENCE},
        headers={"X-IDENTITY-HEADER": live.identity_header("web")},
    )
    assert_entra_error(r, 403, "invalid_request", 9002313)


# -- sign-out ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "client"),
    [
        ("https://evil.example/", "web"),
        ("http://localhost:8000/", "cli"),  # registered, but for another app
        ("http://localhost:8000/extra", None),
        ("http://localhost:abc/", "web"),  # not a port: refused, not a server error
        # Parser differentials (see PARSER_DIFFERENTIALS): the string is not the registered one.
        ("http://evil.example\\@localhost:8000/", "web"),
        ("http://evil.example\\@localhost:8000/", None),
        ("http://localhost:8000\\@evil.example/", "web"),
        ("http://evil.example@localhost:8000/", "web"),
        ("http://localhost:8000/#@evil.example", "web"),
        ("http://localhost:8000/\r\nSet-Cookie:%20x=1", "web"),
    ],
)
def test_logout_to_an_unregistered_address_does_not_redirect(
    live: LiveEmulator, target: str, client: str | None
) -> None:
    params = {"post_logout_redirect_uri": target, "state": "s1"}
    if client:
        params["client_id"] = live.app_id(client)
    r = httpx.get(f"{live.front}/{tid(live)}/oauth2/v2.0/logout", params=params)
    assert r.status_code == 200 and "location" not in r.headers
    assert "not registered" in page_text(r)


def test_logout_to_a_registered_address_redirects(live: LiveEmulator) -> None:
    r = httpx.get(
        f"{live.front}/{tid(live)}/oauth2/v2.0/logout",
        params={"post_logout_redirect_uri": "http://localhost:8000/", "client_id": live.app_id("web")},
    )
    assert r.status_code == 302 and r.headers["location"] == "http://localhost:8000/"


# -- the loopback guard -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8443", "localhost.evil.example", "127.0.0.2.nip.io", "localhost:1", "localhost."],
)
@pytest.mark.parametrize("channel", ["back", "front"])
def test_foreign_host_header_is_refused(live: LiveEmulator, host: str, channel: str) -> None:
    # A DNS-rebinding page reaches the loopback port under its own host name: a 400, as at every tier.
    base = live.base if channel == "back" else live.front
    with live.http() as client:
        for r in (
            client.get(f"{base}/healthz", headers={"Host": host}),
            client.get(f"{base}/admin", headers={"Host": host}),
        ):
            assert r.status_code == 400, r.text
            assert r.json()["error"] == "invalid_request" and "host name" in r.json()["error_description"]
            assert r.headers["x-content-type-options"] == "nosniff"
        # Its own names on its own port are answered (the positive control).
        port = urlsplit(base).port
        for own in (f"localhost:{port}", f"127.0.0.1:{port}"):
            assert client.get(f"{base}/healthz", headers={"Host": own}).status_code == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:8000"])
def test_cross_origin_admin_post_is_refused(fresh_emulator: LiveEmulator, origin: str) -> None:
    emu = fresh_emulator
    r = httpx.post(
        f"{emu.front}/admin/users/disable",
        data={"upn": "alice@contoso.test"},
        headers={"Origin": origin, "Accept": "application/json"},
    )
    assert r.status_code == 403 and r.json()["error"] == "access_denied"
    # Alice is not disabled: she still signs in.
    ok = FormBrowser().sign_in(authorize_url(emu, user_scopes(emu))[0], "alice@contoso.test", emu.password)
    assert ok.status_code == 302 and "code" in query_of(ok.headers["location"])
    # The admin view's own origin is allowed, so the refusal above was the origin's doing.
    own = emu.administrator.request(
        "POST", "/admin/users/disable", data={"upn": "alice@contoso.test"}, headers={"Origin": emu.front}
    )
    assert own.status_code == 200, own.text
