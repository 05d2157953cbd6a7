"""Access-token validation for an API protected by Microsoft Entra ID (or the local emulator).

The rules (Microsoft's guidance for validating Entra tokens, RFC 8725 and RFC 9068):
- size capped before any parsing or cryptography;
- RS256 only; the key comes from the provider's published key set by `kid`, never from the token
  (`jwk`, `jku`, `x5u`, `x5c` headers are ignored);
- issuer exactly the tenant-specific v2.0 issuer of an allowed tenant, consistent with `tid`;
- audience exactly this API's application id;
- `exp`, `nbf`, `iat` with a small leeway; required claims present; `ver` 2.0;
- the calling application (`azp`) on this API's allowlist.
Scopes and roles are checked per route (see dependencies.py), not here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from .errors import BearerError, invalid_token
from .principal import Principal

log = logging.getLogger("zerotrust.validation")

# Entra access tokens are a few kilobytes; 16 KiB leaves room for large group lists (up to 200).
MAX_TOKEN_BYTES = 16 * 1024
# Clock skew tolerated between the identity provider and this host; kept small on purpose.
LEEWAY_SECONDS = 60
ALGORITHMS = ["RS256"]
EMPTY_RETRY_SECONDS = 2.0
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "tid", "oid", "sub", "azp", "ver"]


class ProviderUnavailable(Exception):
    """No signing keys yet and the identity provider can't be reached: answer 503, not 401."""


@dataclass
class KeySet:
    """The provider's signing keys, cached, refreshed on an unknown `kid` at most once per interval
    and re-read on use once older than `max_age`.

    Concurrent misses wait for one fetch; when the provider is unreachable the cached keys stay
    in use, so validation survives an identity-provider outage for tokens signed by known keys.
    The key set's address comes from the authority's discovery document, read on first need.
    """

    authority: str
    http: httpx.AsyncClient
    min_refresh_interval: float = 30.0
    # Why: a key the provider withdraws (compromise, end of a rotation's overlap) must stop being
    # accepted. A refresh only on an unknown kid would keep trusting it for as long as no token with
    # a new kid arrives, i.e. until a restart; so a key set this old is re-read on its next use.
    max_age: float = 30.0
    jwks_uri: str | None = None
    _keys: dict[str, Any] = field(default_factory=dict)
    _last_fetch: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fetches: int = 0

    async def key(self, kid: str) -> Any | None:
        cached = self._keys.get(kid)
        # While one request re-reads a stale set, the others go on with the cached keys, unblocked.
        if cached is not None and (time.monotonic() - self._last_fetch < self.max_age or self._lock.locked()):
            return cached
        async with self._lock:
            if not self._keys:
                # Nothing cached (provider down at start): retry soon rather than wait out the
                # full interval, so service resumes within seconds of the provider coming back.
                interval = EMPTY_RETRY_SECONDS
            elif kid in self._keys:
                interval = self.max_age
            else:
                interval = self.min_refresh_interval
            if time.monotonic() - self._last_fetch >= interval:
                await self.refresh()
        if not self._keys:
            raise ProviderUnavailable
        return self._keys.get(kid)

    async def refresh(self) -> None:
        self._last_fetch = time.monotonic()
        self.fetches += 1
        try:
            if self.jwks_uri is None:
                discovery = await self.http.get(f"{self.authority}/v2.0/.well-known/openid-configuration")
                discovery.raise_for_status()
                self.jwks_uri = str(discovery.json()["jwks_uri"])
            response = await self.http.get(self.jwks_uri)
            response.raise_for_status()
            jwks = response.json()["keys"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "key set refresh for %s failed, keeping %d cached keys: %s", self.authority, len(self._keys), exc
            )
            return
        keys = {}
        for jwk in jwks:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                continue
            try:
                # n and e only: an x5c chain in the key set is not needed to verify and is not trusted.
                keys[str(jwk["kid"])] = jwt.PyJWK({"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}, "RS256").key
            except (jwt.PyJWTError, KeyError, ValueError):
                continue
        # A withdrawn key disappears from the cache at the next refresh, as it did from the provider.
        self._keys = keys


@dataclass(frozen=True)
class TokenPolicy:
    audience: str  # this API's application id
    issuers: dict[str, str]  # allowed tenant id -> its exact v2.0 issuer
    allowed_client_ids: frozenset[str]  # azp allowlist: who may call this API at all
    # zt: developer-strategy-application-permissions - when set, the allowlist for app-only tokens,
    # and allowed_client_ids is for delegated ones only: a daemon's registration that somehow got a
    # user's token is still refused, and so is a user-facing app's app-only token.
    app_only_client_ids: frozenset[str] | None = None

    @classmethod
    def for_authority(
        cls,
        authority: str,
        audience: str,
        allowed_tenants: list[str],
        allowed_client_ids: list[str],
        app_only_client_ids: list[str] | None = None,
    ) -> TokenPolicy:
        """Entra's v2.0 issuer is `<authority host>/<tenant id>/v2.0`, one per allowed tenant."""
        host = authority.rstrip("/").rsplit("/", 1)[0]
        return cls(
            audience,
            {t: f"{host}/{t}/v2.0" for t in allowed_tenants},
            frozenset(allowed_client_ids),
            None if app_only_client_ids is None else frozenset(app_only_client_ids),
        )

    def callers(self, app_only: bool) -> frozenset[str]:
        """The calling applications (azp) accepted for this token type."""
        if app_only and self.app_only_client_ids is not None:
            return self.app_only_client_ids
        return self.allowed_client_ids


class TokenValidator:
    def __init__(self, policy: TokenPolicy, keys: KeySet) -> None:
        self.policy = policy
        self.keys = keys

    async def validate(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise invalid_token("The access token is too large.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid_token("The access token is malformed.") from None
        if header.get("alg") not in ALGORITHMS:
            raise invalid_token("The token's signing algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise invalid_token("The token names no signing key.")
        key = await self.keys.key(kid)
        if key is None:
            raise invalid_token("The token's signing key is not recognised.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.policy.audience,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS, "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            raise invalid_token("The access token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise invalid_token("The access token is not valid yet.") from None
        except jwt.InvalidAudienceError:
            raise invalid_token("The access token is not meant for this API.") from None
        except jwt.PyJWTError:
            raise invalid_token() from None
        return self._check(claims)

    def _check(self, claims: dict[str, Any]) -> Principal:
        # zt: identity-supported-account-types - the tenant allowlist, on tid and on its own issuer.
        tid = claims["tid"]
        expected_issuer = self.policy.issuers.get(tid) if isinstance(tid, str) else None
        if expected_issuer is None:
            raise invalid_token("The token's tenant is not allowed.")
        # Issuer and tenant must agree: a token from another tenant can't borrow an allowed tid.
        if claims["iss"] != expected_issuer:
            raise invalid_token("The token's issuer is not trusted.")
        if claims["ver"] != "2.0":
            raise invalid_token("Only v2.0 access tokens are accepted.")
        try:
            principal = Principal.from_claims(claims)
        except ValueError:
            raise invalid_token() from None
        if principal.azp not in self.policy.callers(principal.is_app_only):
            raise invalid_token("The calling application is not allowed.")
        return principal


__all__ = ["BearerError", "KeySet", "ProviderUnavailable", "TokenPolicy", "TokenValidator"]
