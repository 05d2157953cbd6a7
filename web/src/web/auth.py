"""Sign-in and tokens with MSAL, unmodified: a confidential client whose credential is the web's
managed identity (a federated credential; no secret exists), the auth code flow with PKCE, and a
per-user token cache that lives server-side, encrypted, never in the browser.

MSAL is synchronous: every call that may touch the network runs in a worker thread.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
import msal
from zerotrust.identity import ConfidentialApps, client_credential

from .session import Session, Sessions, SignedInUser
from .settings import Settings

# Sessions whose decrypted MSAL cache is kept in memory, and for how long before a re-read from the
# store (which is what another replica would have written).
MEMORY_CAPACITY = 1000
MEMORY_TTL = 300.0


class SignInFailed(Exception):
    """The sign-in cannot complete; `title` and `detail` are safe to show to the person."""

    def __init__(self, title: str, detail: str, status: int = 400) -> None:
        super().__init__(title)
        self.title, self.detail, self.status = title, detail, status


class IdentityProviderUnavailable(Exception):
    """The identity provider could not be reached (discovery or token endpoint)."""


class Identity:  # zt: identity-iam-development-best-practices
    """Builds the web app's MSAL ConfidentialClientApplication: one per user session, all sharing
    the process's credential and MSAL's http cache (so discovery is fetched once, not per user)."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_assertion: Callable[[], str] | None = None,
        http_client: Any = None,
    ) -> None:
        self.settings = settings
        # The managed identity's token is the client assertion (azure-identity caches and renews
        # it), or, where configured instead, the certificate. Never a secret.
        # zt: identity-non-user-applications
        credential = (
            {"client_assertion": client_assertion}
            if client_assertion
            else client_credential(
                managed_identity_client_id=settings.managed_identity_client_id,
                certificate_file=settings.client_certificate_file,
            )
        )
        host, self._tenant = settings.authority.rstrip("/").rsplit("/", 1)
        self._msal = ConfidentialApps(
            settings.client_id,
            host,
            credential,
            instance_discovery=settings.instance_discovery,
            http_client=http_client,
        )
        self._discovery: dict[str, Any] | None = None

    def app(self, cache: msal.SerializableTokenCache | None = None) -> msal.ConfidentialClientApplication:
        try:
            return self._msal.new(self._tenant, cache)
        except (OSError, ValueError) as exc:
            raise IdentityProviderUnavailable(str(type(exc).__name__)) from None

    def discovery(self) -> dict[str, Any]:
        """The OpenID Connect discovery document, through MSAL's own (cached) http client."""
        if self._discovery is None:
            app = self.app()
            url = f"{self.settings.authority}/v2.0/.well-known/openid-configuration"
            try:
                response = app.http_client.get(url)
                doc = json.loads(response.text) if response.status_code == 200 else None
            except (OSError, ValueError):
                doc = None
            if not isinstance(doc, dict):
                raise IdentityProviderUnavailable("discovery")
            self._discovery = doc
        return self._discovery

    def start_sign_in(
        self, scopes: list[str] | None = None, login_hint: str | None = None
    ) -> dict[str, Any]:  # zt: user-authentication
        """MSAL makes state, nonce and the PKCE (S256) verifier; the flow stays server-side.

        form_post: the code comes back in a POST body, never in a URL, a log line or a Referer.
        `scopes`: the sign-in's (read only) unless more is asked for later (incremental consent).
        """
        # zt: identity-standards-based-development-methodologies - OpenID Connect sign-in with the
        # OAuth 2.0 authorization code grant and PKCE (RFC 7636), all by MSAL: nothing proprietary.
        flow: dict[str, Any] = self.app().initiate_auth_code_flow(
            scopes or self.settings.api_scopes,
            redirect_uri=self.settings.redirect_uri,
            response_mode="form_post",
            login_hint=login_hint,
        )
        return flow

    def finish_sign_in(
        self, flow: dict[str, Any], auth_response: dict[str, str]
    ) -> tuple[SignedInUser, str]:  # zt: user-authentication
        """Redeem the code: MSAL checks state, sends the PKCE verifier and checks the nonce."""
        cache = msal.SerializableTokenCache()
        app = self.app(cache)
        try:
            result = app.acquire_token_by_auth_code_flow(flow, auth_response)
        except ValueError:
            # MSAL's message quotes both states; nothing of it is shown or logged.
            raise SignInFailed(
                "This sign-in could not be completed",
                "The answer from the sign-in page did not match the sign-in this browser "
                "started (missing or different state). Please start again.",
            ) from None
        except RuntimeError:
            raise SignInFailed(
                "This sign-in could not be verified",
                "The identity provider's answer failed a check (nonce). Please start again.",
            ) from None
        except OSError:
            raise IdentityProviderUnavailable("token endpoint") from None
        if "error" in result:
            error = str(result.get("error"))[:100]
            description = str(result.get("error_description") or "")[:300]
            title = (
                "Sign-in was cancelled or refused"
                if error in ("access_denied", "consent_required", "interaction_required", "login_required")
                else "Sign-in failed"
            )
            raise SignInFailed(title, f"{error}: {description}" if description else error)
        claims = result.get("id_token_claims") or {}
        user = self._check_id_token(claims)
        return user, cache.serialize()

    def _check_id_token(self, claims: dict[str, Any]) -> SignedInUser:
        # The ID token came straight from the token endpoint over TLS (OIDC Core 3.1.3.7 allows
        # skipping the signature then); who it is for and who issued it are still checked.
        tid, oid = claims.get("tid"), claims.get("oid")
        if not isinstance(tid, str) or not isinstance(oid, str) or claims.get("aud") != self.settings.client_id:
            raise SignInFailed("This sign-in could not be verified", "The ID token is not for this app.")
        if tid not in self.settings.allowed_tenant_ids:
            raise SignInFailed(
                "Your organization is not allowed to use this app",
                f"You signed in from tenant {tid}, which this app does not accept. "
                "Sign in with an account from an allowed organization.",
                status=403,
            )
        issuer = str(self.discovery().get("issuer", "")).replace("{tenantid}", tid)
        if claims.get("iss") != issuer:
            raise SignInFailed("This sign-in could not be verified", "The ID token has an unexpected issuer.")
        name, username, hint = claims.get("name"), claims.get("preferred_username"), claims.get("login_hint")
        # zt: zero-trust-token-customization - optional claims, shown on the chain page: acct says
        # member (0) or guest (1) of the tenant, ctry the country. Shown, never decided on.
        acct, ctry = claims.get("acct"), claims.get("ctry")
        return SignedInUser(
            oid=oid,
            tid=tid,
            name=name if isinstance(name, str) else None,
            username=username if isinstance(username, str) else None,
            login_hint=hint if isinstance(hint, str) else None,
            account_type={0: "member", 1: "guest"}.get(acct) if isinstance(acct, int) else None,
            country=ctry if isinstance(ctry, str) and len(ctry) <= 8 else None,
        )

    def end_session_url(self, user: SignedInUser | None) -> str:  # zt: user-authentication
        """Sign-out at the identity provider too, then back to our registered post-logout URI."""
        endpoint = self.settings.end_session_endpoint
        if not endpoint:
            try:
                endpoint = str(self.discovery().get("end_session_endpoint") or "")
            except IdentityProviderUnavailable:
                endpoint = ""
            endpoint = endpoint or f"{self.settings.authority}/oauth2/v2.0/logout"
        params = {
            "post_logout_redirect_uri": self.settings.post_logout_redirect_uri,
            "client_id": self.settings.client_id,
        }
        if user is not None and user.login_hint:
            params["logout_hint"] = user.login_hint
        return f"{endpoint}?{urlencode(params)}"


@dataclass(frozen=True)
class Acquired:
    """What a silent acquisition gave: a token, or the token service's refusal (never shown raw)."""

    token: str | None
    error: str | None = None
    error_codes: tuple[int, ...] = ()

    @property
    def needs_admin_approval(self) -> bool:  # zt: permissions-require-admin-consent
        # AADSTS90094: only an administrator can grant what was asked (admin_consent_required).
        return 90094 in self.error_codes


@dataclass(frozen=True)
class HeldToken:
    """One access token in the user's cache, as MSAL recorded it: the scopes the token service said
    it granted (its `scope` answer), and until when. Read from the cache entry, never from the token."""

    scopes: tuple[str, ...]
    expires_on: int


@dataclass
class _Entry:
    app: msal.ConfidentialClientApplication
    cache: msal.SerializableTokenCache
    account: dict[str, Any] | None
    loaded_at: float


class AccessTokens:  # zt: token-management
    """Access tokens for the api, from the user's server-side cache, silently.

    The decrypted cache (and its MSAL app) stay in memory for a few minutes, so a steady-state
    request costs one in-memory cache lookup: no decryption, no store read, no network call.
    Only when MSAL refreshed a token is the cache re-encrypted and written back.
    """

    def __init__(
        self,
        identity: Identity,
        sessions: Sessions,
        *,
        capacity: int = MEMORY_CAPACITY,
        ttl: float = MEMORY_TTL,
    ) -> None:
        self.identity = identity
        self.sessions = sessions
        self.capacity = capacity
        self.ttl = ttl
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()

    async def for_api(self, session: Session) -> str | None:
        """A token for the api's read scopes, or None if the user must sign in (again)."""
        # zt: developer-strategy-application-permissions - a user is present, so the web app calls
        # the api with the user's delegated token only; it holds no app role on the api and never
        # uses client credentials for it (that is for the daemon, with no user).
        got = await self.acquire(session, self.identity.settings.api_scopes)
        if got is None or got.token is None:
            # No usable token and no usable refresh token (expired, revoked, consent withdrawn).
            self.forget(session.key)
            return None
        return got.token

    async def acquire(
        self, session: Session, scopes: list[str], *, force_refresh: bool = False
    ) -> Acquired | None:  # zt: acquire-application-authorization-to-access-resources
        """Silently: from the cache, else with the refresh token. None when there is no cache or
        account to try (sign in); otherwise the token, or why the token service refused it.

        force_refresh skips a cached access token and asks the token service again, which checks
        the grant again: for views whose permission an administrator may withdraw at any time."""
        entry = await self._entry(session)
        if entry is None or entry.account is None:
            return None
        try:
            result = await anyio.to_thread.run_sync(
                lambda: entry.app.acquire_token_silent_with_error(scopes, entry.account, force_refresh=force_refresh)
            )
        except OSError:
            raise IdentityProviderUnavailable("token endpoint") from None
        if entry.cache.has_state_changed:
            await self.sessions.save_token_cache(session, entry.cache.serialize())
        if result and "access_token" in result:
            return Acquired(str(result["access_token"]))
        if not result:
            return Acquired(None, "no_token")
        codes = result.get("error_codes")
        return Acquired(
            None,
            str(result.get("error", "unknown"))[:100],
            tuple(c for c in codes if isinstance(c, int)) if isinstance(codes, list) else (),
        )

    async def held(self, session: Session) -> list[HeldToken]:  # zt: identity
        """The access tokens this user's cache holds for them: what the app was granted, per token."""
        entry = await self._entry(session)
        if entry is None or entry.account is None:
            return []
        found = entry.cache.search(
            msal.TokenCache.CredentialType.ACCESS_TOKEN,
            query={"home_account_id": entry.account["home_account_id"]},
        )
        now = time.time()
        held = [
            HeldToken(tuple(sorted(str(e.get("target", "")).split())), int(e.get("expires_on", 0)))
            for e in found
            if int(e.get("expires_on", 0)) > now
        ]
        return sorted(held, key=lambda h: h.scopes)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    async def _entry(self, session: Session) -> _Entry | None:
        now = time.monotonic()
        entry = self._entries.get(session.key)
        if entry is not None and now - entry.loaded_at < self.ttl:
            self._entries.move_to_end(session.key)
            return entry
        serialized = await self.sessions.token_cache(session)
        if serialized is None:
            self.forget(session.key)
            return None
        cache = msal.SerializableTokenCache()
        cache.deserialize(serialized)
        app = await anyio.to_thread.run_sync(self.identity.app, cache)
        accounts = [a for a in app.get_accounts() if a.get("home_account_id") == session.user.home_account_id]
        entry = _Entry(app, cache, accounts[0] if accounts else None, now)
        self._entries[session.key] = entry
        self._entries.move_to_end(session.key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return entry
