"""Sign-in for a backend-for-frontend with MSAL, unmodified: a confidential client (its credential a managed
identity used as a federated credential, or a certificate; never a secret), the auth code flow with PKCE and
form_post, a server-side session per sign-in, and each user's token cache kept server-side, sealed.

The routes stay the app's own and short:

    signin = SignIn(config, sessions)
    login:    return await signin.login(request, safe_next(next))
    callback: return await signin.complete(request, await signin.take(request), auth_response(posted_form))
    logout:   return await signin.logout(request, await signin.session(request))

(`posted_form`: the identity provider's form post, read with a size cap: the callback takes posts from anyone.)

MSAL is synchronous: every call that may touch the network runs in a worker thread.
"""

# region liftable: bff-sign-in (1 of 4) requires: fastapi, msal, anyio
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import anyio.to_thread
import msal
from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from .session_store import record_key
from .sessions import SIGN_IN_TTL, IdentityProviderUnavailable, PendingSignIn, Session, Sessions, SignedInUser
from .token_caches import LoopGuardedHttp, TokenCaches, msal_http_client, off_loop_credential

MAX_NEXT_LENGTH = 512
# What the identity provider may send back to the callback (anything else is ignored), and its refusals.
AUTH_RESPONSE_FIELDS = ("code", "state", "error", "error_description", "error_uri", "session_state")
REFUSED = ("access_denied", "consent_required", "interaction_required", "login_required")


@dataclass(frozen=True)
class SignInConfig:
    client_id: str
    authority: str  # https://login.microsoftonline.com/<tenant id>, or /organizations with allowed_tenants
    redirect_uri: str
    post_logout_redirect_uri: str
    scopes: tuple[str, ...]  # asked for at sign-in
    allowed_tenants: tuple[str, ...]
    credential: Mapping[str, Any]  # MSAL's client_credential: a client assertion callable or a certificate
    instance_discovery: bool = True
    end_session_endpoint: str | None = None  # default: from the discovery document
    cookie_secure: bool = True  # false only for browsers that don't keep Secure cookies on http://localhost
    http_client: Any = None  # MSAL's HTTP client, when not its own (tests hand in a fake provider)
    memory_ttl: float = 300.0  # how long a decrypted token cache is reused before the store is read again
    # zt: secure-with-cae
    client_capabilities: tuple[str, ...] = ()  # ("CP1",): this app handles claims challenges (CAE)

    @property
    def session_cookie(self) -> str:
        # __Host-: Secure, Path=/ and no Domain, so no sibling host can set or shadow the cookie.
        return "__Host-session" if self.cookie_secure else "session"

    @property
    def sign_in_cookie(self) -> str:
        return "__Host-signin" if self.cookie_secure else "signin"


class SignInFailed(HTTPException):
    """The sign-in cannot complete; `title` and `detail` are safe to show to the person."""

    def __init__(self, title: str, detail: str, status: int = 400) -> None:
        super().__init__(status, detail)
        self.title = title


# zt: user-authentication
def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a path of this app only; `//host`, URLs, backslashes, controls become `/`."""
    if not value or len(value) > MAX_NEXT_LENGTH or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    return value


def auth_response(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k in AUTH_RESPONSE_FIELDS if isinstance(v := params.get(k), str)}


# zt: identity-iam-development-best-practices
class SignIn:
    def __init__(self, config: SignInConfig, sessions: Sessions) -> None:
        self.config, self.sessions = config, sessions
        self._http = LoopGuardedHttp(config.http_client or msal_http_client())
        self._discovery: dict[str, Any] | None = None
        self.tokens = TokenCaches(sessions, self.app, config.memory_ttl)

    # region quote: msal-app
    def app(self, cache: msal.TokenCache | None = None) -> msal.ConfidentialClientApplication:
        try:
            return msal.ConfidentialClientApplication(
                self.config.client_id,
                client_credential=off_loop_credential(self.config.credential),
                authority=self.config.authority,
                instance_discovery=self.config.instance_discovery,
                http_client=self._http,
                http_cache=self.tokens.http_cache,
                client_capabilities=list(self.config.client_capabilities) or None,
                token_cache=cache if cache is not None else msal.SerializableTokenCache(),
            )
        except (OSError, ValueError):
            raise IdentityProviderUnavailable("discovery") from None

    # endregion

    def discovery(self) -> dict[str, Any]:
        """The OpenID Connect discovery document, through MSAL's own (cached) HTTP client."""
        if self._discovery is None:
            url = f"{self.config.authority}/v2.0/.well-known/openid-configuration"
            try:
                response = self.app().http_client.get(url)
                doc = json.loads(response.text) if response.status_code == 200 else None
            except (OSError, ValueError):
                doc = None
            if not isinstance(doc, dict):
                raise IdentityProviderUnavailable("discovery")
            self._discovery = doc
        return self._discovery

    async def session(self, request: Request) -> Session | None:
        return await self.sessions.load(request.cookies.get(self.config.session_cookie))

    # zt: user-authentication
    async def login(
        self,
        request: Request,
        next_path: str,
        *,
        scopes: list[str] | None = None,
        login_hint: str | None = None,
        prompt: str | None = None,
        extra: dict[str, Any] | None = None,
        claims_challenge: str | None = None,
    ) -> Response:
        """To the identity provider. MSAL makes state, nonce and the PKCE (S256) verifier; the flow stays
        here. form_post: the code comes back in a POST body, never in a URL, a log line or a Referer.
        `claims_challenge`: what a resource asked the new sign-in to meet (CAE, step-up); `prompt`:
        "select_account" lets the person pick another account than the one the provider would sign in."""
        # zt: identity-standards-based-development-methodologies
        # OpenID Connect with the OAuth 2.0 authorization code grant and PKCE (RFC 7636), all by MSAL.
        # region quote: auth-code-pkce
        flow: dict[str, Any] = await anyio.to_thread.run_sync(
            lambda: self.app().initiate_auth_code_flow(
                scopes or list(self.config.scopes),
                redirect_uri=self.config.redirect_uri,
                response_mode="form_post",
                login_hint=login_hint,
                prompt=prompt,
                claims_challenge=claims_challenge,
            )
        )
        # endregion
        current = request.cookies.get(self.config.session_cookie)
        try:
            pending = await self.sessions.begin_sign_in(flow, next_path, current, extra=extra)
        except ValueError:
            raise SignInFailed("This sign-in could not be started", "It carries more than a cookie holds.") from None
        response = RedirectResponse(flow["auth_uri"], status_code=303 if request.method == "POST" else 302)
        # The pending sign-in, sealed (nothing is stored here); it must come back with the identity provider's
        # cross-site form post, which a SameSite=Lax cookie does not accompany (None needs Secure).
        samesite: Literal["none", "lax"] = "none" if self.config.cookie_secure else "lax"
        response.set_cookie(
            self.config.sign_in_cookie,
            pending.id,
            max_age=SIGN_IN_TTL,
            path="/",
            secure=self.config.cookie_secure,
            httponly=True,
            samesite=samesite,
        )
        return response

    async def take(self, request: Request) -> PendingSignIn:
        """The sign-in this browser's cookie holds (cleared by this answer; a replayed copy meets a used code)."""
        pending = await self.sessions.take_sign_in(request.cookies.get(self.config.sign_in_cookie))
        if pending is None:
            raise SignInFailed(
                "This sign-in has expired or was already used",
                "The sign-in this answer belongs to was not started in this browser, took too long, "
                "or has already been completed. Please start again.",
            )
        return pending

    # zt: user-authentication
    async def redeem(self, pending: PendingSignIn, answer: dict[str, str]) -> tuple[SignedInUser, str]:
        """The code, redeemed: MSAL checks state, sends the PKCE verifier and checks the nonce."""
        cache = msal.SerializableTokenCache()
        try:
            result = await anyio.to_thread.run_sync(
                lambda: self.app(cache).acquire_token_by_auth_code_flow(pending.flow, answer)
            )
        except ValueError:  # MSAL's message quotes both states; nothing of it is shown or logged
            raise SignInFailed(
                "This sign-in could not be completed",
                "The answer from the sign-in page did not match the sign-in this browser "
                "started (missing or different state). Please start again.",
            ) from None
        except RuntimeError:
            raise SignInFailed(
                "This sign-in could not be verified", "The identity provider's answer failed a check (nonce)."
            ) from None
        except OSError:
            raise IdentityProviderUnavailable("token endpoint") from None
        if "error" in result:
            error, description = str(result["error"])[:100], str(result.get("error_description") or "")[:300]
            title = "Sign-in was cancelled or refused" if error in REFUSED else "Sign-in failed"
            raise SignInFailed(title, f"{error}: {description}" if description else error)
        return await anyio.to_thread.run_sync(self._user, result.get("id_token_claims") or {}), cache.serialize()

    # region quote: id-token-checks
    def _user(self, claims: dict[str, Any]) -> SignedInUser:
        # The ID token came straight from the token endpoint over TLS (OIDC Core 3.1.3.7 allows skipping
        # the signature then); who it is for and who issued it are still checked.
        tid, oid = claims.get("tid"), claims.get("oid")
        if not isinstance(tid, str) or not isinstance(oid, str) or claims.get("aud") != self.config.client_id:
            raise SignInFailed("This sign-in could not be verified", "The ID token is not for this app.")
        # zt: identity-supported-account-types
        if tid not in self.config.allowed_tenants:
            raise SignInFailed(
                "Your organization is not allowed to use this app",
                f"You signed in from tenant {tid}, which this app does not accept. "
                "Sign in with an account from an allowed organization.",
                status=403,
            )
        if claims.get("iss") != str(self.discovery().get("issuer", "")).replace("{tenantid}", tid):
            raise SignInFailed("This sign-in could not be verified", "The ID token has an unexpected issuer.")

        return SignedInUser.from_claims(oid, tid, claims)

    # endregion

    async def complete(self, request: Request, pending: PendingSignIn, answer: dict[str, str]) -> Response:
        user, token_cache = await self.redeem(pending, answer)
        session = await self.start_session(request, pending, user, token_cache)
        # For the audit line (zerotrust.audit reads these; kept as plain state so this file stands alone).
        request.state.audit_user, request.state.audit_reason = (user.tid, user.oid), "signed_in"
        return self.with_session(RedirectResponse(pending.next, status_code=303), session)

    async def start_session(
        self, request: Request, pending: PendingSignIn, user: SignedInUser, token_cache: str
    ) -> Session:
        """A new session: a new id at every sign-in; whatever session this browser had is deleted."""
        current = request.cookies.get(self.config.session_cookie)
        replaced = [k for k in (pending.replaces, record_key(current) if current else None) if k]
        session = await self.sessions.start(user, token_cache, replaces=replaced)
        for key in replaced:
            self.tokens.forget(key)
        request.state.session = session
        return session

    def with_session(self, response: Response, session: Session) -> Response:
        # No Max-Age: the cookie ends with the browser; the server enforces idle and absolute timeouts.
        response.set_cookie(
            self.config.session_cookie, session.id, path="/", secure=self.config.cookie_secure, httponly=True
        )
        self.clear_cookie(response, self.config.sign_in_cookie)
        return response

    # zt: user-authentication
    async def logout(self, request: Request, session: Session | None) -> Response:
        """Ends the session here (record and token cache deleted, cookie cleared), then at the identity
        provider, which sends the browser back to the registered post-logout URI."""
        response = RedirectResponse("/", status_code=303)
        if session is not None:
            request.state.audit_user, request.state.audit_reason = (session.user.tid, session.user.oid), "signed_out"
            await self.sessions.end(session.id)
            self.tokens.forget(session.key)
            response = RedirectResponse(await anyio.to_thread.run_sync(self._end_session_url, session.user), 302)
        self.clear_cookie(response, self.config.session_cookie)
        return response

    def _end_session_url(self, user: SignedInUser) -> str:
        try:
            endpoint = self.config.end_session_endpoint or str(self.discovery().get("end_session_endpoint") or "")
        except IdentityProviderUnavailable:
            endpoint = ""
        params = {"post_logout_redirect_uri": self.config.post_logout_redirect_uri, "client_id": self.config.client_id}
        if user.login_hint:
            params["logout_hint"] = user.login_hint
        return f"{endpoint or self.config.authority + '/oauth2/v2.0/logout'}?{urlencode(params)}"

    def clear_cookie(self, response: Response, name: str) -> None:
        samesite: Literal["none", "lax"] = (
            "none" if name == self.config.sign_in_cookie and self.config.cookie_secure else "lax"
        )
        response.delete_cookie(name, path="/", secure=self.config.cookie_secure, httponly=True, samesite=samesite)


# endregion liftable: bff-sign-in (1 of 4)
