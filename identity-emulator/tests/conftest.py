"""An in-process emulator for the fuzz tests, with real protocol state to aim at.

The state is made the way clients make it (an authorize request, the login and consent forms, a
code redemption, a device code request), so that fuzzed requests can carry live handles and
reach the checks behind them, not only the first "unknown handle" refusal.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from identity_emulator.core import Emulator
from identity_emulator.main import create_app
from identity_emulator.settings import EmulatorSettings

from tests.support.launch import register_certificate

BACK = "https://localhost:8443"
FRONT = "http://localhost:8444"
# The emulator refuses any peer that is not this machine; TestClient's default peer is "testclient".
LOOPBACK_PEER = ("127.0.0.1", 50000)
WEB_REDIRECT = "http://localhost:8000/auth/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(repr=False)  # a falsifying example prints the seeds: their tokens would drown it
class Seeds:
    """Live handles and identifiers in the emulator under fuzz."""

    emu: Emulator
    tenant_ids: list[str]
    tenant_names: list[str]
    app_ids: dict[str, str]
    mi_client_ids: list[str]
    mi_object_ids: list[str]
    identity_headers: list[str]
    resources: list[str]
    scopes: list[str]
    redirect_uris: list[str]
    users: list[str]
    password: str
    kids: list[str]
    cert_key: rsa.RSAPrivateKey
    cert_s256: str
    cert_s1: str
    token_endpoints: list[str]
    issuers: list[str]
    mi_assertions: list[str] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    verifiers: list[str] = field(default_factory=list)
    device_codes: list[str] = field(default_factory=list)
    user_codes: list[str] = field(default_factory=list)
    txns: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return "Seeds(...)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis prints examples with this
        printer.text(repr(self))


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            self.fields[str(a["name"])] = a.get("value") or ""


def hidden_fields(html: str) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(html)
    return parser.fields


def _registered_key(local: Path, app: str) -> rsa.RSAPrivateKey:
    """The public half where the emulator looks for an app's registered certificates."""
    return register_certificate(local, app)[0]


@pytest.fixture(scope="module")
def app_and_seeds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient, Seeds]]:
    local = tmp_path_factory.mktemp("fuzz-local")
    cert_key = _registered_key(local, "daemon")
    cert_pem = next((local / "credentials" / "daemon").glob("*.crt")).read_bytes()
    cert = x509.load_pem_x509_certificate(cert_pem)
    # Explicit ports and host, so a developer's EMULATOR_* environment cannot change the origins.
    settings = EmulatorSettings(state_dir=local / "emulator", port=8443, front_port=8444, public_host="localhost")
    app = create_app(settings)
    emu: Emulator = app.state.emulator
    d = emu.directory
    with (
        TestClient(app, base_url=BACK, client=LOOPBACK_PEER, follow_redirects=False) as back,
        TestClient(app, base_url=FRONT, client=LOOPBACK_PEER, follow_redirects=False) as front,
    ):
        api = d.by_name["api"]
        downstream = d.by_name["downstream-api"]
        seeds = Seeds(
            emu=emu,
            tenant_ids=list(d.tenants),
            tenant_names=[t.name for t in d.tenants.values()] + [t.domain for t in d.tenants.values()],
            app_ids={a.name: a.application_id for a in d.applications.values()},
            mi_client_ids=[m.client_id for m in d.managed_identities.values()],
            mi_object_ids=[m.object_id for m in d.managed_identities.values()],
            identity_headers=list(emu.identity_headers.values()),
            resources=[r for a in (api, downstream) for r in sorted(a.resource_ids())]
            + ["api://AzureADTokenExchange", "https://ossrdbms-aad.database.windows.net", "https://redis.azure.com"],
            scopes=[f"{a.identifier_uri}/{s}" for a in (api, downstream) for s in a.scopes]
            + [f"{a.identifier_uri}/.default" for a in (api, downstream)],
            redirect_uris=[u for a in d.applications.values() for u in a.redirect_uris + a.post_logout_redirect_uris],
            users=[u.upn for t in d.tenants.values() for u in t.users.values()],
            password=emu.demo_password,
            kids=[k.kid for k in emu.keys.published()],
            cert_key=cert_key,
            cert_s256=b64url(cert.fingerprint(hashes.SHA256())),
            cert_s1=b64url(cert.fingerprint(hashes.SHA1())),  # noqa: S303 - x5t is SHA-1 by definition
            token_endpoints=[emu.client_auth.token_endpoint(t) for t in (*d.tenants, "common", "organizations")],
            issuers=[emu.issuer.issuer(t) for t in d.tenants],
        )
        _seed_handles(back, front, seeds)
        yield back, front, seeds


def _seed_handles(back: TestClient, front: TestClient, seeds: Seeds) -> None:
    emu, home = seeds.emu, seeds.emu.directory.home_tenant_id
    for name, header in emu.identity_headers.items():
        r = back.get(
            "/msi/token",
            headers={"X-IDENTITY-HEADER": header},
            params={"api-version": "2019-08-01", "resource": "api://AzureADTokenExchange"},
        )
        assert r.status_code == 200, (name, r.text)
        seeds.mi_assertions.append(r.json()["access_token"])
    web_mi = seeds.mi_assertions[list(emu.identity_headers).index("web")]
    web_auth = {"client_id": seeds.app_ids["web"], "client_assertion_type": ASSERTION_TYPE, "client_assertion": web_mi}
    scope = f"api://{seeds.app_ids['api']}/Tasks.Read openid offline_access"

    def authorize(prompt: str | None = None) -> tuple[Any, str]:
        verifier = secrets.token_urlsafe(48)
        query = {
            "client_id": seeds.app_ids["web"],
            "response_type": "code",
            "redirect_uri": WEB_REDIRECT,
            "scope": scope,
            "state": "s",
            "code_challenge_method": "S256",
            "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
        }
        if prompt:
            query["prompt"] = prompt
        return front.get(f"/{home}/oauth2/v2.0/authorize?{urlencode(query)}"), verifier

    # A person signs in and consents: a session cookie stays in `front`.
    page, verifier = authorize()
    txn = hidden_fields(page.text)["txn"]
    page = front.post(f"/{home}/login", data={"txn": txn, "username": "alice@contoso.test", "password": seeds.password})
    if page.status_code == 200:
        page = front.post(f"/{home}/consent", data={"txn": txn, "decision": "accept"})
    assert page.status_code == 302, page.text
    code = parse_qs(urlsplit(page.headers["location"]).query)["code"][0]
    r = back.post(
        f"/{home}/oauth2/v2.0/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": WEB_REDIRECT,
            **web_auth,
        },
    )
    assert r.status_code == 200, r.text
    seeds.access_tokens.append(r.json()["access_token"])
    seeds.refresh_tokens.append(r.json()["refresh_token"])
    # Unredeemed codes (the session answers at once now), and pending sign-ins waiting at the login page.
    for _ in range(3):
        page, verifier = authorize()
        seeds.codes.append(parse_qs(urlsplit(page.headers["location"]).query)["code"][0])
        seeds.verifiers.append(verifier)
        page, _ = authorize(prompt="login")
        seeds.txns.append(hidden_fields(page.text)["txn"])
    # A device code waiting for a person: the device login page compares user codes against it.
    r = back.post(f"/{home}/oauth2/v2.0/devicecode", data={"client_id": seeds.app_ids["cli"], "scope": scope})
    assert r.status_code == 200, r.text
    seeds.device_codes.append(r.json()["device_code"])
    seeds.user_codes.append(r.json()["user_code"])
