"""Validating Microsoft Entra ID v2.0 access tokens: who is calling, proven, or refused with a reason.

Rules (Microsoft's token validation guidance, RFC 8725, RFC 9068): size capped before any parsing; RS256
only, the key chosen by `kid` from the provider's published key set, never from the token (`jwk`, `jku`,
`x5u`, `x5c` are ignored); issuer exactly an allowed tenant's v2.0 issuer, consistent with `tid`;
audience exactly this API; `exp`/`nbf`/`iat` with a small leeway; `ver` 2.0; the calling app (`azp`) on
the allowlist for its token type. Scopes and roles are checked per route (protect.py).
"""

# region liftable: protect-fastapi-api (2 of 3) requires: pyjwt[crypto], pydantic
from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from .keyset import KeySet

log = logging.getLogger(__name__)

# Entra access tokens are a few kilobytes; 16 KiB leaves room for large group lists (up to 200).
MAX_TOKEN_BYTES = 16 * 1024
ALGORITHMS = ["RS256"]
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "tid", "oid", "sub", "azp", "ver"]
# Validated tokens remembered per API (one audience): enough for every active caller, bounded in memory.
VALIDATED_CACHE_SIZE = 10_000


class InvalidToken(Exception):
    """The token is refused; `description` is safe to send back (never which key, never a claim)."""

    def __init__(self, description: str = "The access token is invalid.") -> None:
        super().__init__(description)
        self.description = description


class Principal(BaseModel):
    """Who is calling, as a validated token says it. Data is keyed on `tid` + `oid`, never on names."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tid: str = Field(description="Tenant id of the directory the caller belongs to.")
    oid: str = Field(description="Object id of the user (or, app-only, the client's service principal): the key.")
    sub: str = Field(description="Pairwise subject: unique per user *and* application; differs between tiers.")
    aud: str = Field(description="Audience: the application id of the API the token was minted for.")
    iss: str = Field(description="Issuer: the tenant-specific v2.0 issuer, checked against the tenant.")
    azp: str = Field(description="Application id of the client that obtained the token (the calling app).")
    azpacr: str | None = Field(None, description="How the client authenticated: 0 public, 1 secret, 2 certificate.")
    scp: str | None = Field(None, description="Delegated scopes, space-separated; only when a user is present.")
    roles: tuple[str, ...] = Field((), description="App roles: assigned to the user, or granted to the app.")
    idtyp: str | None = Field(None, description="Optional claim: 'app' for app-only tokens, 'user' for delegated.")
    ver: str = Field(description="Token version; 2.0 only.")
    name: str | None = Field(None, description="Display name; for display only, never for decisions.")
    preferred_username: str | None = Field(None, description="Sign-in name; mutable, for display only.")
    uti: str | None = Field(None, description="Unique token identifier (for logs, never the token itself).")
    xms_cc: tuple[str, ...] = Field((), description="Client capabilities, e.g. cp1: the client handles CAE.")
    acrs: tuple[str, ...] = Field((), description="Authentication contexts met (e.g. c1: a recent second factor).")
    groups: tuple[str, ...] = Field((), description="Group object ids, when the API asks for group claims.")
    has_group_overage: bool = Field(False, description="Groups did not fit: resolve them through Graph, never a URL.")
    exp: int = Field(description="Expiry (seconds since the epoch).")
    # zt: zero-trust-token-customization
    # Optional claims the api's registration asks for. acct decides (the api limits guests, api/dependencies.py):
    # an integer as Entra sends it, or the token is invalid ("1", true or 1.0 are not taken for a guest or member).
    acct: StrictInt | None = Field(None, description="Optional claim: 0 a member of the tenant, 1 a guest.")
    ctry: str | None = Field(None, description="Optional claim: the user's country or region (two letters).")

    @property
    def is_app_only(self) -> bool:
        """No user in the token: client credentials or a managed identity calling as itself."""
        return self.idtyp == "app" or (self.scp is None and self.idtyp != "user")

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scp.split()) if self.scp else frozenset()

    @property
    def user_key(self) -> str:
        """Stable per-user key (object id + tenant), also MSAL's home account id for this user."""
        return f"{self.oid}.{self.tid}"

    def view(self) -> dict[str, Any]:
        """What a tier may show about its caller: no token, no secret."""
        methods = {"0": "public client", "1": "client secret", "2": "certificate or federated credential"}
        return {
            "tenant_id": self.tid,
            "object_id": self.oid,
            "subject": self.sub,
            "issuer": self.iss,
            "audience": self.aud,
            "token_version": self.ver,
            "calling_app": self.azp,
            "calling_app_authentication": methods.get(self.azpacr or ""),
            "calling_app_acr": self.azpacr,
            "scopes": sorted(self.scopes),
            "roles": list(self.roles),
            "app_only": self.is_app_only,
            "name": self.name,
            "username": self.preferred_username,
            "client_capabilities": list(self.xms_cc),
            "authentication_contexts": list(self.acrs),
            # Object ids only; on overage the token names no group and says where to ask (not shown).
            "groups": list(self.groups),
            "group_overage": self.has_group_overage,
            "account_type": {0: "member", 1: "guest"}.get(self.acct) if self.acct is not None else None,
            "country": self.ctry,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        def listed(name: str) -> tuple[Any, ...]:
            value = claims.get(name)
            return tuple(value) if isinstance(value, list) else ()

        names = claims.get("_claim_names")
        # _claim_sources is not kept: in a forged token its URL is whatever an attacker chose.
        return cls.model_validate(
            {
                **claims,
                "roles": listed("roles"),
                "groups": listed("groups"),
                "xms_cc": listed("xms_cc"),
                "acrs": listed("acrs"),
                "has_group_overage": isinstance(names, dict) and "groups" in names,
            }
        )


@dataclass(frozen=True)
class TokenPolicy:
    audience: str  # this API's application id
    issuers: dict[str, str]  # allowed tenant id -> its exact v2.0 issuer
    client_ids: frozenset[str]  # azp allowlist for delegated tokens
    # zt: developer-strategy-application-permissions
    # The allowlist for app-only tokens: a user-facing app's app-only token is refused, and so is a
    # daemon's registration that somehow got a user's token.
    app_only_client_ids: frozenset[str] = frozenset()
    leeway_seconds: int = 60

    @classmethod
    def for_authority(
        cls,
        authority_host: str,
        audience: str,
        tenants: tuple[str, ...],
        client_ids: tuple[str, ...],
        app_only_client_ids: tuple[str, ...] = (),
        leeway_seconds: int = 60,
    ) -> TokenPolicy:
        """Entra's v2.0 issuer is `<authority host>/<tenant id>/v2.0`, one per allowed tenant."""
        host = authority_host.rstrip("/")
        issuers = {t: f"{host}/{t}/v2.0" for t in tenants}
        return cls(audience, issuers, frozenset(client_ids), frozenset(app_only_client_ids), leeway_seconds)


class TokenValidator:
    """`validate` checks a token in full once, then remembers the result under the token's SHA-256 (never the
    token) until it expires: a token seen again costs a hash and a lookup, and is still refused once past
    `exp` or once its signing key is withdrawn from the key set. What a token can't say (an account
    deactivated, a session revoked) is checked per request elsewhere, cached or not."""

    def __init__(
        self,
        policy: TokenPolicy,
        keys: KeySet,
        *,
        cache_size: int = VALIDATED_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.keys = keys
        self.cache_size, self.clock = cache_size, clock
        self._validated: OrderedDict[bytes, tuple[Principal, float, str]] = OrderedDict()

    async def validate(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("The access token is too large.")
        digest = hashlib.sha256(token.encode()).digest()
        seen = self._validated.get(digest)
        if seen is not None:
            principal, expires, kid = seen
            # The same bounds as a full check: exp with the leeway, and a key still published.
            if self.clock() > expires + self.policy.leeway_seconds:
                del self._validated[digest]
                raise InvalidToken("The access token has expired.")
            if await self.keys.key(kid) is not None:
                return principal
            del self._validated[digest]
        principal, expires, kid = await self._validate(token)
        if self.cache_size > 0:
            self._validated[digest] = (principal, expires, kid)
            if len(self._validated) > self.cache_size:
                self._validated.popitem(last=False)
        return principal

    async def _validate(self, token: str) -> tuple[Principal, float, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("The access token is malformed.") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("The token's signing algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("The token names no signing key.")
        key = await self.keys.key(kid)
        if key is None:
            raise InvalidToken("The token's signing key is not recognised.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.policy.audience,
                leeway=self.policy.leeway_seconds,
                options={"require": REQUIRED_CLAIMS, "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The access token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("The access token is not valid yet.") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("The access token is not meant for this API.") from None
        except jwt.PyJWTError:
            raise InvalidToken from None
        return self._check(claims), float(claims["exp"]), kid

    def _check(self, claims: dict[str, Any]) -> Principal:
        # zt: identity-supported-account-types
        # region quote: tenant-allowlist
        # The tenant allowlist, on tid and on its own issuer: another tenant can't borrow an allowed tid.
        tid = claims["tid"]
        expected_issuer = self.policy.issuers.get(tid) if isinstance(tid, str) else None
        if expected_issuer is None:
            raise InvalidToken("The token's tenant is not allowed.")
        if claims["iss"] != expected_issuer:
            raise InvalidToken("The token's issuer is not trusted.")
        # endregion
        if claims["ver"] != "2.0":
            raise InvalidToken("Only v2.0 access tokens are accepted.")
        try:
            principal = Principal.from_claims(claims)
        except ValueError:
            raise InvalidToken from None
        allowed = self.policy.app_only_client_ids if principal.is_app_only else self.policy.client_ids
        if principal.azp not in allowed:
            raise InvalidToken("The calling application is not allowed.")
        return principal


# endregion liftable: protect-fastapi-api (2 of 3)
