"""In-process fixtures for the web app: real MSAL against a fake identity provider (its http client
is swapped, nothing else), and a fake api served over real HTTP so aiohttp is exercised too."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from devtools.ports import free_port
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient
from web.main import create_app
from web.settings import Settings

from tests.support.launch import serve_in_thread
from tests.support.people import Person
from tests.support.redis import RedisFrontStack, SignerCredential, StaticKeys, start_redis_front
from tests.support.tokens import Issuer

TENANT = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
OTHER_TENANT = "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
IDP = "https://login.example.test"
SIGNER = Issuer.standalone(IDP)
AUTHORITY = f"{IDP}/{TENANT}"
WEB_APP_ID = "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_SCOPE = "https://graph.microsoft.com/User.Read"
API_SCOPES = [
    "api://f6016428-a480-44ec-bc23-042b445465fc/Tasks.Read",
    "api://f6016428-a480-44ec-bc23-042b445465fc/Tasks.ReadWrite",
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FakeUser:
    oid: str
    tid: str
    upn: str
    name: str


ALICE = FakeUser("3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912", TENANT, "alice@contoso.test", "Alice Adams")
BOB = FakeUser("4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b", TENANT, "bob@contoso.test", "Bob Brown")
CAROL = FakeUser("7f8091a2-b3c4-45d6-a7f8-091a2b3c4d5e", OTHER_TENANT, "carol@fabrikam.test", "Carol Clark")
# A B2B guest in contoso (acct 1 in her tokens), as the demo directory's gwen.
GWEN = FakeUser("0b7d2f4e-8a61-4c39-9e52-6f1a3b8c7d90", TENANT, "gwen@fabrikam.test", "Gwen Green (guest)")
USERS = {"alice": ALICE, "bob": BOB, "carol": CAROL, "gwen": GWEN}


class _Response:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code = status
        self.text = json.dumps(body)
        self.headers = {"Content-Type": "application/json"}


@dataclass
class FakeIdp:
    """A requests-shaped http client for MSAL: discovery, and the token endpoint's code and refresh
    grants. It checks PKCE and keeps count of what was asked of it."""

    access_token_lifetime: int = 3600
    # Entra's `refresh_in` on a token response (MSAL renews the token from then on); None: not sent.
    access_token_refresh_in: int | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, FakeUser] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # every token and code handed out
    refuse_refresh: bool = False

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": f"{IDP}/{TENANT}/v2.0",
            "authorization_endpoint": f"{AUTHORITY}/oauth2/v2.0/authorize",
            "token_endpoint": f"{AUTHORITY}/oauth2/v2.0/token",
            "end_session_endpoint": f"{AUTHORITY}/oauth2/v2.0/logout",
        }

    def get(self, url: str, **kwargs: Any) -> _Response:
        if url == f"{AUTHORITY}/v2.0/.well-known/openid-configuration":
            return _Response(200, self.discovery())
        return _Response(404, {"error": "not_found"})

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> _Response:
        data = dict(data or {})
        self.token_requests.append(data)
        if url != f"{AUTHORITY}/oauth2/v2.0/token":
            return _Response(404, {"error": "not_found"})
        if data.get("grant_type") == "authorization_code":
            grant = self.codes.pop(data.get("code", ""), None)
            if grant is None:
                return _Response(400, {"error": "invalid_grant", "error_description": "AADSTS70008: code used"})
            verifier = data.get("code_verifier", "")
            if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
                return _Response(400, {"error": "invalid_grant", "error_description": "AADSTS501481: PKCE"})
            return _Response(200, self._tokens(grant["user"], grant["nonce"], data))
        if data.get("grant_type") == "refresh_token":
            user = self.refresh_tokens.get(data.get("refresh_token", ""))
            if user is None or self.refuse_refresh:
                return _Response(400, {"error": "invalid_grant", "error_description": "AADSTS50173: revoked"})
            return _Response(200, self._tokens(user, None, data))
        return _Response(400, {"error": "unsupported_grant_type"})

    def close(self) -> None:
        pass

    def issue_code(self, auth_uri: str, user: FakeUser) -> tuple[str, str]:
        """What the sign-in pages would do: a code for this user; returns (code, state)."""
        q = {k: v[0] for k, v in parse_qs(urlsplit(auth_uri).query).items()}
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"user": user, "nonce": q.get("nonce"), "challenge": q["code_challenge"]}
        self.issued.append(code)
        return code, q["state"]

    def _tokens(self, user: FakeUser, nonce: str | None, request: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        graph = GRAPH_SCOPE in str(request.get("scope", ""))
        base = {
            "iss": f"{IDP}/{user.tid}/v2.0",
            "tid": user.tid,
            "oid": user.oid,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "ver": "2.0",
            "preferred_username": user.upn,
            "name": user.name,
        }
        id_claims = {
            **base,
            "aud": WEB_APP_ID,
            "sub": "pairwise-web",
            "login_hint": b64url(f"{user.tid}.{user.oid}".encode()),
            # Optional claims the web app's registration asks for (infra/registrations.yaml).
            "acct": 1 if user is GWEN else 0,
            "ctry": {"alice@contoso.test": "NL", "bob@contoso.test": "US"}.get(user.upn, "FR"),
        }
        if nonce is not None:
            id_claims["nonce"] = nonce
        at_claims = {
            **base,
            "aud": GRAPH_APP_ID if graph else "f6016428-a480-44ec-bc23-042b445465fc",
            "azp": WEB_APP_ID,
            "scp": "User.Read" if graph else "Tasks.Read Tasks.ReadWrite",
            "uti": secrets.token_urlsafe(8),
        }
        if "CP1" in str(request.get("claims", "")):
            at_claims["xms_cc"] = ["cp1"]  # the client declared cp1 (MSAL's client_capabilities)
        # Signed as the identity provider signs them (the tests' one token factory); the web reads neither
        # signature: the ID token came over TLS from the token endpoint, the access token is the api's.
        access_token, id_token = SIGNER.sign(at_claims), SIGNER.sign(id_claims)
        refresh = "0.AAAA" + secrets.token_urlsafe(40)
        self.refresh_tokens[refresh] = user
        self.issued += [access_token, id_token, refresh]
        return {
            "token_type": "Bearer",
            "scope": GRAPH_SCOPE if graph else " ".join(API_SCOPES),
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access_token,
            "refresh_token": refresh,
            "id_token": id_token,
            "client_info": b64url(json.dumps({"uid": user.oid, "utid": user.tid}).encode()),
            **({"refresh_in": self.access_token_refresh_in} if self.access_token_refresh_in else {}),
        }

    @property
    def code_redemptions(self) -> int:
        return sum(1 for r in self.token_requests if r.get("grant_type") == "authorization_code")

    @property
    def refreshes(self) -> int:
        return sum(1 for r in self.token_requests if r.get("grant_type") == "refresh_token")


@dataclass
class FakeApi:
    """The api's contract as the web app uses it; `fail_with` makes every call answer that status."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, str | None, Any]] = field(default_factory=list)
    fail_with: int | None = None
    downstream_view: dict[str, Any] | None = None  # replaces downstream-api's part of /me
    groups: list[str] = field(default_factory=list)  # what /me/groups answers
    group_names: dict[str, str] = field(default_factory=dict)  # and the names it gives (Graph's, downstream)
    # Answers the api's calls with this WWW-Authenticate on a 401, `challenges` times (claims or not).
    challenge: str | None = None
    challenges: int = 0
    # Graph (served here too, at /v1.0): a 401 with this WWW-Authenticate while set; its requests, counted.
    graph_challenge: str | None = None
    graph_calls: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.tasks.clear()
        self.calls.clear()
        self.fail_with = None
        self.downstream_view = None
        self.groups, self.group_names = [], {}
        self.challenge, self.challenges, self.graph_challenge = None, 0, None
        self.graph_calls.clear()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Response:
            if request.url.path.startswith("/v1.0/"):
                return self._graph(request)  # Graph's requests are kept apart (graph_calls)
            body = await request.body()
            self.calls.append(
                (
                    request.method,
                    request.url.path,
                    request.headers.get("authorization"),
                    json.loads(body) if body else None,
                )
            )
            if self.fail_with is not None:
                return JSONResponse({"error": "nope"}, status_code=self.fail_with)
            if self.challenge is not None and self.challenges > 0:
                self.challenges -= 1
                refusal = {"error": "insufficient_claims", "error_description": "Sign in again."}
                return JSONResponse(refusal, status_code=401, headers={"WWW-Authenticate": self.challenge})
            response: Response = await call_next(request)
            return response

        @app.get("/tasks")
        async def list_tasks(request: Request, response: Response) -> list[dict[str, Any]]:
            # Paged as the api pages (here the token is simply where the page starts).
            top, start = int(request.query_params.get("$top", "100")), int(request.query_params.get("$skiptoken", "0"))
            tasks = list(self.tasks.values())
            if start + top < len(tasks):
                response.headers["Link"] = f'</tasks?$top={top}&$skiptoken={start + top}>; rel="next"'
            return tasks[start : start + top]

        @app.get("/tasks/shared")
        async def shared_tasks() -> list[dict[str, Any]]:
            # As the api answers: tasks shared with one of the caller's groups, `mine` marking theirs.
            return [{**t, "mine": True} for t in self.tasks.values() if t.get("shared_with_group")]

        @app.post("/tasks", status_code=201)
        async def add(request: Request) -> dict[str, Any]:
            body = await request.json()
            task = {
                "id": secrets.token_hex(4),
                "title": body["title"],
                "done": False,
                "created_at": "2026-01-01T00:00:00Z",
            }
            self.tasks[task["id"]] = task
            return task

        @app.patch("/tasks/{task_id}")
        async def patch(task_id: str, request: Request) -> Response:
            if task_id not in self.tasks:
                return JSONResponse({"error": "not found"}, status_code=404)
            self.tasks[task_id].update(await request.json())
            return JSONResponse(self.tasks[task_id])

        @app.get("/tasks/{task_id}")
        async def one(task_id: str) -> Response:
            if task_id not in self.tasks:
                return JSONResponse({"error": "not found"}, status_code=404)
            return JSONResponse(self.tasks[task_id])

        @app.put("/tasks/{task_id}/share")
        async def share(task_id: str, request: Request) -> Response:
            # As the api answers: 404 for a task that isn't yours, 403 for a group you are not in.
            if task_id not in self.tasks:
                return JSONResponse({"error": "not found"}, status_code=404)
            group = (await request.json())["group_id"]
            if group is not None and group not in self.groups:
                return JSONResponse({"detail": "You can share only with a group you are a member of."}, 403)
            self.tasks[task_id]["shared_with_group"] = group
            return JSONResponse(self.tasks[task_id])

        @app.get("/me/groups")
        async def my_groups() -> dict[str, Any]:
            return {"groups": self.groups, "names": self.group_names}

        @app.delete("/tasks", status_code=204)
        async def delete_all() -> Response:
            self.tasks.clear()
            return Response(status_code=204)

        @app.delete("/tasks/{task_id}", status_code=204)
        async def delete(task_id: str) -> Response:
            self.tasks.pop(task_id, None)
            return Response(status_code=204)

        @app.get("/me")
        async def me() -> dict[str, Any]:
            view = {
                "tenant_id": TENANT,
                "object_id": ALICE.oid,
                "subject": "pairwise-api",
                "audience": "f6016428-a480-44ec-bc23-042b445465fc",
                "calling_app": WEB_APP_ID,
                "scopes": ["Tasks.Read", "Tasks.ReadWrite"],
                "roles": [],
                "username": ALICE.upn,
            }
            down = {
                **view,
                "subject": "pairwise-downstream",
                "audience": "56416278-656a-410f-9888-db490850ca20",
                "calling_app": "f6016428-a480-44ec-bc23-042b445465fc",
                "scopes": ["Records.ReadWrite"],
            }
            return {"api": view, "downstream_api": self.downstream_view or down}

        return app

    def _graph(self, request: Request) -> Response:
        token = (request.headers.get("authorization") or "").removeprefix("Bearer ")
        claims = jwt.decode(token, options={"verify_signature": False})
        self.graph_calls.append(str(claims.get("aud")))
        if self.graph_challenge is not None and claims.get("xms_cc") == ["cp1"]:
            refusal = {"error": {"code": "InvalidAuthenticationToken", "message": "CAE"}}
            return JSONResponse(refusal, status_code=401, headers={"WWW-Authenticate": self.graph_challenge})
        user = next(u for u in USERS.values() if u.oid == claims["oid"])
        return JSONResponse({"id": user.oid, "displayName": f"{user.name} (Graph)", "userPrincipalName": user.upn})


def claims_challenge(claims: str, realm: str = "api") -> str:
    """A 401's WWW-Authenticate asking for `claims` (JSON), as the api and Graph send it."""
    return f'Bearer realm="{realm}", error="insufficient_claims", claims="{base64.b64encode(claims.encode()).decode()}"'


@pytest.fixture(scope="session")
def fake_api_server() -> Iterator[tuple[FakeApi, str]]:
    api = FakeApi()
    with serve_in_thread(api.app()) as base:
        yield api, base


@pytest.fixture
def fake_api(fake_api_server: tuple[FakeApi, str]) -> FakeApi:
    api, _ = fake_api_server
    api.reset()
    return api


@pytest.fixture
def nothing_listening() -> str:
    """The URL of a port nobody listens on: an api that is down."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def idp() -> FakeIdp:
    return FakeIdp()


@pytest.fixture
def settings(tmp_path: Path, fake_api_server: tuple[FakeApi, str]) -> Settings:
    base = fake_api_server[1]
    # Graph on every page (graph_check_seconds=0), so each test sees what one page does.
    return Settings(
        state_dir=tmp_path / "web",
        authority=AUTHORITY,
        api_url=base,
        idp_origin=IDP,
        graph_url=base,
        graph_check_seconds=0,
    )


class Browser(Person):
    """The app in process (its TestClient keeps the cookies), plus the steps a person takes at the fake
    identity provider."""

    def __init__(self, client: TestClient, idp: FakeIdp, settings: Settings) -> None:
        super().__init__(client)
        self.idp = idp
        self.settings = settings

    @property
    def responses(self) -> list[Any]:
        return self.seen

    def start_sign_in(self, next_path: str = "/tasks") -> str:
        r = self.get("/auth/login", params={"next": next_path})
        assert r.status_code == 302, r.text
        return str(r.headers["location"])

    def issue_code(self, auth_uri: str, user: str = "alice") -> tuple[str, str]:
        """The person signs in at the identity provider: (code, state) for the callback."""
        return self.idp.issue_code(auth_uri, USERS[user])

    def sign_in(self, user: str = "alice", next_path: str = "/tasks") -> Any:
        auth_uri = self.start_sign_in(next_path)
        code, state = self.issue_code(auth_uri, user)
        return self.post("/auth/callback", data={"code": code, "state": state, "session_state": "s"})

    def get_as(self, session_id: str, url: str) -> Any:
        """A request carrying exactly this session cookie (an old one, or one an attacker planted)."""
        return self.http.get(url, follow_redirects=False, headers={"Cookie": f"__Host-session={session_id}"})

    @property
    def session_id(self) -> str | None:
        value = self.http.cookies.get("__Host-session")
        return str(value) if value is not None else None

    def csrf(self, path: str = "/") -> str:
        return super().csrf(path)


def on_loop(browser: Browser, work: Callable[[Any, Any], Any]) -> Any:
    """`work(clients, session)` on that app's own event loop, for the session its browser holds."""
    c = browser.http.app.state.clients  # type: ignore[attr-defined]

    async def run() -> Any:
        return await work(c, await c.signin.sessions.load(browser.session_id))

    return browser.http.portal.call(run)  # type: ignore[attr-defined]


@pytest.fixture
def make_browser(settings: Settings, idp: FakeIdp, fake_api: FakeApi) -> Iterator[Callable[..., Browser]]:
    """`make_browser(api_url=...)`: the app with some settings changed, and a browser on it."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Browser:
        s = settings.model_copy(update=overrides)
        credential = {"client_assertion": lambda: "managed-identity-assertion"}
        # The web's managed identity's tokens for Redis, signed by the fake identity provider.
        app = create_app(s, credential=credential, msal_http=idp, store_credential=SignerCredential(SIGNER))
        # https base URL: the cookie jar sends Secure cookies only over https (browsers also over
        # http://localhost, which the live test covers).
        client = TestClient(app, base_url="https://localhost:8000")
        clients.append(client.__enter__())
        return Browser(client, idp, s)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def browser(make_browser: Callable[..., Browser]) -> Browser:
    return make_browser()


@pytest.fixture(scope="session")
def redis_front_stack(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisFrontStack]:
    """The session's private Redis behind a token front that trusts the fake identity provider's keys."""
    from devtools.tls import ensure_dev_tls

    tls = ensure_dev_tls(tmp_path_factory.mktemp("local"))
    stack = start_redis_front(redis_server, tls, AUTHORITY, keys=StaticKeys(SIGNER.jwks()))
    yield stack
    stack.stop()


@pytest.fixture
def redis_front(redis_front_stack: RedisFrontStack, monkeypatch: pytest.MonkeyPatch) -> RedisFrontStack:
    """The front, emptied, its clock right; this process trusts the dev CA as the web process does (SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(redis_front_stack.tls.ca_bundle))
    from devtools.pgtoken import Counters

    redis_front_stack.clear()
    redis_front_stack.clock.ahead = 0
    redis_front_stack.front.counters = Counters()
    return redis_front_stack


@pytest.fixture
def production_ok() -> dict[str, object]:
    """A configuration production accepts, to vary one field at a time."""
    return {
        "environment": "production",
        "authority": "https://login.microsoftonline.com/9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d",
        "instance_discovery": True,
        "idp_origin": "https://login.microsoftonline.com",
        "redirect_uri": "https://web.example.net/auth/callback",
        "post_logout_redirect_uri": "https://web.example.net/",
        "api_url": "https://api.internal.example.net",
    }
