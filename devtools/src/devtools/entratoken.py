"""A managed identity's Entra access token, checked the way an Azure data service checks the token a client
gives it as its password: Azure Database for PostgreSQL (devtools.pgtoken) and Azure Cache for Redis
(devtools.redis_front) share this check.

The token must be signed (RS256 only) by a key of the identity provider's published key set (discovery and
JWKS over https, verified against the dev CA), carry the service's audience, come from the home tenant
(`<authority>/v2.0`), be inside its lifetime (nbf/iat/exp, against `clock`, a setting so tests need no
sleeping) and belong to the expected object id: Azure binds a database role, or a cache's access policy
assignment, to one identity's object id, so another identity's token is refused even when otherwise valid.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.request import urlopen

import jwt

REQUIRED_CLAIMS = ("exp", "nbf", "iat", "iss", "aud", "oid")


class TokenRefused(ValueError):
    """Why a token was refused: for the log of the service that refused it, never for the client."""


class SigningKeys(Protocol):
    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK: ...


class AccessTokenChecker:
    """Checks tokens for one audience, issued by one authority's home tenant."""

    def __init__(
        self,
        *,
        authority: str,
        audience: str,
        ca_bundle: Path | None = None,
        keys: SigningKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`keys`: where signing keys come from (default: the authority's discovery and JWKS over https,
        trusting `ca_bundle`); `clock`: the time tokens are checked against."""
        import ssl

        self.issuer = f"{authority.rstrip('/')}/v2.0"
        self.audience = audience
        self.clock = clock
        self._ssl = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        self._jwks = keys
        self._jwks_lock = threading.Lock()

    def _keys(self) -> SigningKeys:
        with self._jwks_lock:
            if self._jwks is None:
                # Discovery names the key set, as for any relying party; read once, then the client
                # refreshes the keys itself when a token names an unknown kid (rotation).
                url = f"{self.issuer}/.well-known/openid-configuration"
                with urlopen(url, timeout=5, context=self._ssl) as answer:  # noqa: S310  # nosec B310 - https URL from config
                    jwks_uri = json.loads(answer.read())["jwks_uri"]
                self._jwks = jwt.PyJWKClient(jwks_uri, ssl_context=self._ssl, timeout=5, lifespan=300)
            return self._jwks

    def claims(self, token: str, object_id: str) -> dict[str, Any]:
        """The claims of `token` if it is a valid token of `object_id` for this audience; else TokenRefused."""
        try:
            key = self._keys().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                # The lifetime is checked below against our clock (a setting), not PyJWT's.
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except (jwt.PyJWTError, OSError, KeyError, ValueError) as exc:
            raise TokenRefused(f"token refused: {type(exc).__name__}: {str(exc)[:120]}") from None
        times = [claims[name] for name in ("nbf", "iat", "exp")]
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in times):
            raise TokenRefused("token refused: nbf, iat and exp must be numbers")
        now = self.clock()
        if now < claims["nbf"] or now < claims["iat"]:
            raise TokenRefused("token refused: not yet valid")
        if now >= claims["exp"]:
            raise TokenRefused("token refused: expired")
        if str(claims["oid"]).lower() != object_id.lower():
            raise TokenRefused(f"token of object id {str(claims['oid'])[:40]} used for object id {object_id[:40]}")
        return claims
