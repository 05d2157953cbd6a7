"""Sign-in for a backend-for-frontend with the lifted unit alone (signin.py + sessions.py +
session_store.py): the browser is sent to the identity provider with PKCE, comes back with a code, gets an
opaque session cookie and never a token; the app then gets the user's access token silently; sign-out ends
the session. MSAL runs unmodified; only its HTTP client is a stand-in for the identity provider."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.

import asyncio
import base64
import hashlib
import json
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response
from lifted.asgi import Answer, request
from lifted.session_store import Sealer, SqliteSessionStore
from lifted.sessions import Session, Sessions
from lifted.signin import SignIn, SignInConfig, auth_response, safe_next

HOST, TENANT, CLIENT = "https://idp.test", "11111111-2222-4333-8444-555555555555", "my-web-app"
SCOPE = "api://my-api/Things.Read"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, Any]) -> str:
    # MSAL reads the ID token it got over TLS from the token endpoint without checking a signature.
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.c2ln"


@dataclass
class Reply:
    status_code: int
    body: dict[str, Any]

    @property
    def text(self) -> str:
        return json.dumps(self.body)

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}


class IdentityProvider:
    """Discovery, the sign-in page (issue_code) and the token endpoint (code with PKCE, refresh)."""

    def __init__(self) -> None:
        self.codes: dict[str, tuple[str, str]] = {}
        self.issued: list[str] = []
        self.grants: list[str] = []

    def get(self, url: str, **_: Any) -> Reply:
        authority = f"{HOST}/{TENANT}"
        return Reply(
            200,
            {
                "issuer": f"{authority}/v2.0",
                "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                "token_endpoint": f"{authority}/oauth2/v2.0/token",
                "end_session_endpoint": f"{authority}/oauth2/v2.0/logout",
            },
        )

    def issue_code(self, auth_uri: str) -> tuple[str, str]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(auth_uri).query).items()}
        assert query["code_challenge_method"] == "S256" and query["response_mode"] == "form_post"
        code = secrets.token_urlsafe(16)
        self.codes[code] = (query["nonce"], query["code_challenge"])
        return code, query["state"]

    def post(self, url: str, data: dict[str, Any] | None = None, **_: Any) -> Reply:
        form = dict(data or {})
        self.grants.append(str(form.get("grant_type")))
        if form.get("grant_type") == "authorization_code":
            nonce, challenge = self.codes.pop(form["code"])
            assert b64url(hashlib.sha256(form["code_verifier"].encode()).digest()) == challenge, "PKCE"
            return Reply(200, self._tokens(nonce))
        if form.get("grant_type") == "refresh_token":
            return Reply(200, self._tokens(None))
        return Reply(400, {"error": "unsupported_grant_type"})

    def _tokens(self, nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        id_claims = {
            "iss": f"{HOST}/{TENANT}/v2.0", "aud": CLIENT, "tid": TENANT, "oid": "alice-oid", "sub": "s",
            "iat": now, "nbf": now, "exp": now + 3600, "ver": "2.0", "name": "Alice", "preferred_username": "alice@x",
            **({"nonce": nonce} if nonce else {}),
        }  # fmt: skip
        access, refresh = f"access-{secrets.token_hex(8)}", f"refresh-{secrets.token_hex(8)}"
        self.issued += [access, refresh]
        return {
            "token_type": "Bearer", "scope": SCOPE, "expires_in": 3600, "access_token": access,
            "refresh_token": refresh, "id_token": unsigned_jwt(id_claims),
            "client_info": b64url(json.dumps({"uid": "alice-oid", "utid": TENANT}).encode()),
        }  # fmt: skip

    def close(self) -> None:
        pass


class Browser:
    """Keeps the cookies the app sets, and what it received, to check no token ever came."""

    def __init__(self, app: FastAPI) -> None:
        self.app, self.cookies, self.received = app, dict[str, str](), list[Answer]()

    async def go(self, method: str, url: str, form: dict[str, str] | None = None) -> Answer:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = urlencode(form).encode() if form is not None else b""
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        answer = await request(self.app, method, url, headers=headers, body=body)
        for cookie in answer.cookies:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if value and "max-age=0" not in cookie.lower():
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        self.received.append(answer)
        return answer


def app_with(signin: SignIn) -> FastAPI:
    app = FastAPI()

    async def current(request: Request) -> Session:
        session = await signin.session(request)
        if session is None:
            raise HTTPException(401, "Sign in first.")
        return session

    @app.get("/auth/login")
    async def login(request: Request, next: str | None = None) -> Response:
        return await signin.login(request, safe_next(next))

    @app.post("/auth/callback")
    async def callback(request: Request) -> Response:
        posted = dict(parse_qsl((await request.body()).decode()[:16384]))
        return await signin.complete(request, await signin.take(request), auth_response(posted))

    @app.get("/me")
    async def me(session: Annotated[Session, Depends(current)]) -> dict[str, Any]:
        got = await signin.tokens.acquire(session, [SCOPE])
        return {"name": session.user.name, "token_for_the_api": got is not None and got.token is not None}

    @app.post("/auth/logout")
    async def logout(request: Request) -> Response:
        return await signin.logout(request, await signin.session(request))

    return app


async def main(state: Path) -> None:
    idp = IdentityProvider()
    config = SignInConfig(
        client_id=CLIENT,
        authority=f"{HOST}/{TENANT}",
        redirect_uri="https://app.test/auth/callback",
        post_logout_redirect_uri="https://app.test/",
        scopes=(SCOPE,),
        allowed_tenants=(TENANT,),
        credential={"client_assertion": lambda: "assertion"},
        instance_discovery=False,
        http_client=idp,
    )
    store = await SqliteSessionStore.open(state / "sessions.sqlite3")
    sessions = Sessions(store, Sealer.from_key_file(state / "key"), idle_timeout=1800, absolute_timeout=28800)
    browser = Browser(app_with(SignIn(config, sessions)))
    try:
        assert (await browser.go("GET", "/me")).status == 401
        to_idp = await browser.go("GET", "/auth/login?next=/me")
        assert to_idp.status == 302 and to_idp.headers["location"].startswith(f"{HOST}/{TENANT}/oauth2/v2.0/authorize")
        code, state_ = idp.issue_code(to_idp.headers["location"])
        back = await browser.go("POST", "/auth/callback", {"code": code, "state": state_})
        assert back.status == 303 and back.headers["location"] == "/me", (back.status, back.body)
        assert set(browser.cookies) == {"__Host-session"}
        me = await browser.go("GET", "/me")
        assert me.status == 200 and json.loads(me.body) == {"name": "Alice", "token_for_the_api": True}
        assert idp.grants == ["authorization_code"]  # the token came from the server-side cache
        replay = await browser.go("POST", "/auth/callback", {"code": code, "state": state_})
        assert replay.status == 400  # a used sign-in finds nothing
        bye = await browser.go("POST", "/auth/logout")
        assert bye.status == 302 and bye.headers["location"].startswith(f"{HOST}/{TENANT}/oauth2/v2.0/logout")
        assert (await browser.go("GET", "/me")).status == 401
        seen = b"".join(a.body + json.dumps(a.headers).encode() for a in browser.received)
        assert not any(secret.encode() in seen for secret in idp.issued), "a token reached the browser"
    finally:
        await store.close()
    print("bff-sign-in: ok")


asyncio.run(main(Path(sys.argv[1])))
