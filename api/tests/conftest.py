"""In-process fixtures for the api: real token validation and real MSAL, against a fake token service (MSAL's
http client swapped, nothing else) and a fake downstream-api served over real HTTP, so the aiohttp hop and
its error mapping run as they do in production.

Tokens for the api are minted with the tests' one token factory (tests/support/tokens.py), signed by a key
of its own that `FakeProvider` publishes to the api's key set.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from api.main import create_app
from api.settings import (
    API_APP_ID,
    API_APP_ONLY_APP_ID,
    DAEMON_APP_ID,
    DOWNSTREAM_APP_ID,
    PROVISIONER_APP_ID,
    WEB_APP_ID,
    Settings,
)
from devtools.ports import free_port
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient
from zerotrust.graph import Answer
from zerotrust.settings import HOME_TENANT_ID

from tests.support.launch import serve_in_thread
from tests.support.tokens import (
    ALICE,
    DEMO_TENANTS,
    STANDALONE_HOST,
    FakeProvider,
    Issuer,
    apis_at,
    build_app_only_token,
)

TENANT = HOME_TENANT_ID
OTHER_TENANT = DEMO_TENANTS["fabrikam"]
AUTHORITY = f"{STANDALONE_HOST}/{TENANT}"
DOWNSTREAM_APP_ID_URI = f"api://{DOWNSTREAM_APP_ID}"
# The api as its callers address it: the audience, the web as the delegated caller, the daemon app-only.
API = apis_at("http://testserver", "http://downstream.test")["api"]
assert (API.app_id, API.caller, API.app_caller) == (API_APP_ID, WEB_APP_ID, DAEMON_APP_ID)

BOB_OID = "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"
CAROL_OID = "7f8091a2-b3c4-45d6-a7f8-091a2b3c4d5e"  # fabrikam's user

# What the api's managed identity would hand MSAL as its client assertion.
CLIENT_ASSERTION = "managed-identity-assertion"
OBO_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# MSAL adds these to every user grant; what the api chose to ask for is the rest.
_OIDC_SCOPES = {"openid", "profile", "offline_access"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the token service, as MSAL's http client -----------------------------------------------------


class _Response:
    """What MSAL reads of a requests.Response."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code = status
        self.text = json.dumps(body)
        self.headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}


def entra_error(
    error: str, code: int, description: str = "Request failed.", suberror: str | None = None
) -> dict[str, Any]:
    """An error body as Entra's token endpoint shapes it (what zerotrust.onbehalf maps from)."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%SZ}"
    body: dict[str, Any] = {
        "error": error,
        "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\nTimestamp: {now}",
        "error_codes": [code],
        "timestamp": now,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
    }
    if suberror:
        body["suberror"] = suberror
    return body


@dataclass(frozen=True)
class TokenRequest:
    """One POST to the token endpoint: the tenant in its URL and the form MSAL sent."""

    tenant: str
    form: dict[str, Any]

    @property
    def grant_type(self) -> str:
        return str(self.form.get("grant_type"))

    @property
    def scopes(self) -> set[str]:
        return set(str(self.form.get("scope", "")).split()) - _OIDC_SCOPES

    @property
    def assertion(self) -> str | None:
        return self.form.get("assertion")


@dataclass
class FakeTokenService:
    """Discovery for any tenant and the token endpoint's on-behalf-of and client-credentials grants.

    It answers a fresh access token, or the refusal it was told to give (`refuse`), or can't be reached at
    all (`reachable = False`: MSAL's http client raises, as requests does when the host is down). It
    refuses a client that does not authenticate as the api with the api's credential.
    """

    lifetime: int = 3600
    reachable: bool = True
    refusal: tuple[int, dict[str, Any]] | None = None
    requests: list[TokenRequest] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    DISCOVERY = re.compile(re.escape(STANDALONE_HOST) + r"/([^/]+)/v2\.0/\.well-known/openid-configuration")
    TOKEN = re.compile(re.escape(STANDALONE_HOST) + r"/([^/]+)/oauth2/v2\.0/token")

    def refuse(
        self, error: str, code: int, *, status: int = 400, suberror: str | None = None, claims: str | None = None
    ) -> None:
        body = entra_error(error, code, suberror=suberror)
        if claims is not None:
            body["claims"] = claims  # what Entra adds when a fresh sign-in must satisfy a claims request
        self.refusal = (status, body)

    def get(self, url: str, **kwargs: Any) -> _Response:
        if not self.reachable:
            raise ConnectionError("the token service can't be reached")
        match = self.DISCOVERY.fullmatch(url)
        if match is None:
            return _Response(404, {"error": "not_found"})
        tenant = f"{STANDALONE_HOST}/{match[1]}"
        return _Response(
            200,
            {
                "issuer": f"{tenant}/v2.0",
                "authorization_endpoint": f"{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{tenant}/oauth2/v2.0/token",
                "jwks_uri": f"{tenant}/discovery/v2.0/keys",
            },
        )

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> _Response:
        if not self.reachable:
            raise ConnectionError("the token service can't be reached")
        match = self.TOKEN.fullmatch(url)
        if match is None:
            return _Response(404, {"error": "not_found"})
        request = TokenRequest(match[1], dict(data or {}))
        self.requests.append(request)
        # The api's two registrations, one credential: users' exchanges as the api, app-only as api-app-only.
        client = request.form.get("client_id")
        if client not in (API_APP_ID, API_APP_ONLY_APP_ID) or request.form.get("client_assertion") != CLIENT_ASSERTION:
            return _Response(401, entra_error("invalid_client", 700027))
        if self.refusal is not None:
            return _Response(*self.refusal)
        if request.grant_type == OBO_GRANT and request.form.get("requested_token_use") == "on_behalf_of":
            if client != API_APP_ID:
                return _Response(400, entra_error("invalid_grant", 50105))
            return _Response(200, self._token(request, user=True))
        if request.grant_type == "client_credentials":
            if client != API_APP_ONLY_APP_ID:
                return _Response(400, entra_error("invalid_grant", 501051))
            return _Response(200, self._token(request, user=False))
        return _Response(400, entra_error("unsupported_grant_type", 70003))

    def close(self) -> None:
        pass

    def _token(self, request: TokenRequest, *, user: bool) -> dict[str, Any]:
        # Opaque to the api, which must pass it on untouched: distinct per grant, so a test can trace it.
        token = f"downstream-token-{secrets.token_urlsafe(12)}"
        self.issued.append(token)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(sorted(request.scopes)),
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": token,
        }
        if user:
            claims = jwt.decode(str(request.assertion), options={"verify_signature": False})
            body["client_info"] = b64url(json.dumps({"uid": claims["oid"], "utid": claims["tid"]}).encode())
        return body

    @property
    def on_behalf_of(self) -> list[TokenRequest]:
        return [r for r in self.requests if r.grant_type == OBO_GRANT]

    @property
    def client_credentials(self) -> list[TokenRequest]:
        return [r for r in self.requests if r.grant_type == "client_credentials"]


# -- downstream-api, over real HTTP --------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One answer of the fake downstream-api: JSON `body`, or `text` as it is (e.g. not JSON at all)."""

    status: int = 200
    body: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DownstreamCall:
    method: str
    path: str
    query: str
    authorization: str | None
    correlation_id: str | None
    body: Any


@dataclass
class FakeDownstream:
    """Records every call and answers the replies it was given, in turn (the last one for every call
    after it). Unreachable (`reachable = False`): the api built next is pointed at an address where
    connections are refused."""

    base: str
    dead: str
    reachable: bool = True
    replies: list[Reply] = field(default_factory=list)
    calls: list[DownstreamCall] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base if self.reachable else self.dead

    def answer(self, *replies: Reply) -> None:
        self.replies = list(replies)

    def reset(self) -> None:
        self.reachable = True
        self.replies = []
        self.calls.clear()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def anything(request: Request) -> Response:
            raw = await request.body()
            self.calls.append(
                DownstreamCall(
                    request.method,
                    request.url.path,
                    request.url.query,
                    request.headers.get("authorization"),
                    # The trace id of the W3C traceparent: the correlation id, carried down.
                    (request.headers.get("traceparent") or "--").split("-")[1] or None,
                    json.loads(raw) if raw else None,
                )
            )
            reply = (self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]) if self.replies else Reply()
            if reply.text is not None:
                return Response(reply.text, reply.status, reply.headers, media_type="application/json")
            if reply.status == 204:
                return Response(status_code=204, headers=reply.headers)
            return JSONResponse(reply.body, reply.status, reply.headers)

        return app


@dataclass
class FakeGraph:
    """Microsoft Graph as the api's `graph` seam sees it: each request recorded, answered in turn (the last
    answer for every request after it); by default the caller's profile."""

    answers: list[Answer] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, url, Authorization

    def answer(self, *answers: Answer) -> None:
        self.answers = list(answers)

    async def send(self, method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Answer:
        self.requests.append((method, url, headers.get("Authorization", "")))
        if not self.answers:
            return Answer(200, {"id": ALICE["oid"], "displayName": ALICE["name"], "userPrincipalName": "alice@x"})
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def graph() -> FakeGraph:
    return FakeGraph()


@pytest.fixture(scope="session")
def refused_address() -> Iterator[str]:
    """An address that refuses connections: a port held bound and never listened on, so nothing else can
    take it while the tests run."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture(scope="session")
def downstream_server(refused_address: str) -> Iterator[FakeDownstream]:
    fake = FakeDownstream("", refused_address)
    with serve_in_thread(fake.app()) as base:
        fake.base = base
        yield fake


@pytest.fixture
def downstream(downstream_server: FakeDownstream) -> FakeDownstream:
    downstream_server.reset()
    return downstream_server


@pytest.fixture
def token_service() -> FakeTokenService:
    return FakeTokenService()


# -- the api and its callers' tokens -------------------------------------------------------------


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    return Issuer.standalone(STANDALONE_HOST)


@pytest.fixture
def provider(issuer: Issuer) -> FakeProvider:
    return FakeProvider(issuer)


ApiFactory = Callable[..., TestClient]


@pytest.fixture(scope="session")
def empty_trust_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    store = tmp_path_factory.mktemp("trust")
    (store / "none.pem").touch()
    (store / "certs").mkdir()
    return store / "none.pem", store / "certs"


@pytest.fixture
def make_api(
    provider: FakeProvider,
    token_service: FakeTokenService,
    downstream: FakeDownstream,
    graph: FakeGraph,
    empty_trust_store: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ApiFactory]:
    """The api with its lifespan running, reading `downstream.url` when built; kwargs go to Settings."""
    # Nothing here speaks TLS (downstream is plain http, MSAL's http client is the fake), so the TLS
    # contexts each app builds at start trust no CA: building them then costs nothing, instead of a
    # tenth of a second per test parsing the system's bundle.
    monkeypatch.setenv("SSL_CERT_FILE", str(empty_trust_store[0]))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty_trust_store[1]))
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = Settings(**{"authority": AUTHORITY, "downstream_url": downstream.url, **overrides})
        app = create_app(
            settings,
            key_fetch=provider.fetch,
            credential={"client_assertion": lambda: CLIENT_ASSERTION},
            msal_http=token_service,
            graph=graph.send,
        )
        # Unexpected errors answered as the api answers them (a 500 with an id), not raised in the test.
        # Addressed as configured: any other Host is refused (zerotrust.hosts).
        client = TestClient(app, raise_server_exceptions=False, base_url=settings.public_base_url)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: ApiFactory) -> TestClient:
    return make_api()


@dataclass(frozen=True)
class Tokens:
    """Access tokens for the api, as Entra issues them: a user's through the web app, or an app's."""

    issuer: Issuer

    def user(self, scp: str = "Tasks.Read", *, tenant: str = "contoso", **claims: Any) -> str:
        """A user's delegated token (alice's in contoso, carol's in fabrikam) with exactly `scp`."""
        if tenant != "contoso":
            claims = {"oid": CAROL_OID, "preferred_username": "carol@fabrikam.test", **claims}
        return self.issuer.token(
            API, scp=scp, tid=self.issuer.tenants[tenant], iss=self.issuer.issuer(tenant), **claims
        )

    def app(self, roles: list[str], *, azp: str = DAEMON_APP_ID, tenant: str = "contoso", **claims: Any) -> str:
        """An app-only token (client credentials) from `azp`, granted `roles`."""
        tid, iss = self.issuer.tenants[tenant], self.issuer.issuer(tenant)
        return build_app_only_token(self.issuer, API, roles, azp=azp, tid=tid, iss=iss, **claims)

    def daemon(self, roles: tuple[str, ...] = ("Tasks.Report.All",), **kwargs: Any) -> str:
        return self.app(list(roles), azp=DAEMON_APP_ID, **kwargs)

    def provisioner(self, roles: tuple[str, ...] = ("Users.Provision",), **kwargs: Any) -> str:
        return self.app(list(roles), azp=PROVISIONER_APP_ID, **kwargs)


@pytest.fixture(scope="session")
def tokens(issuer: Issuer) -> Tokens:
    return Tokens(issuer)
