"""The identity provider's signing keys, as an API that validates its tokens keeps them.

Fetched on first need from the address the authority's discovery document gives; refreshed on an unknown
`kid` at most once per interval (an attacker can't make the API hammer the provider); re-read once older
than its lifetime (a withdrawn key stops working within it); kept while the provider is down.
"""

# region liftable: protect-fastapi-api (1 of 3) requires: pyjwt[crypto], aiohttp
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

log = logging.getLogger(__name__)

EMPTY_RETRY_SECONDS = 2.0

Fetch = Callable[[str], Awaitable[Any]]


class ProviderUnavailable(Exception):
    """No signing keys yet and the identity provider can't be reached: a 503, not a 401."""


def fetch_json(session: aiohttp.ClientSession) -> Fetch:
    """GET a JSON document with `session` (trusting SSL_CERT_FILE's CAs, see hops.py)."""

    async def get(url: str) -> Any:
        async with session.get(url) as response:
            response.raise_for_status()
            return await response.json(content_type=None)

    return get


@dataclass
class KeySet:
    """The provider's signing keys: fetched on first need (its address from the authority's discovery
    document), refreshed on an unknown `kid` at most once per `refresh_interval`, and re-read on use once
    older than `max_age` (a key the provider withdraws stops being accepted). Concurrent misses wait for
    one fetch; while the provider is down the cached keys stay in use."""

    authority: str
    fetch: Fetch
    refresh_interval: float = 30.0
    max_age: float = 300.0
    jwks_uri: str | None = None
    fetches: int = 0
    _keys: dict[str, Any] = field(default_factory=dict)
    _last_fetch: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def key(self, kid: str) -> Any | None:
        cached = self._keys.get(kid)
        # While one request re-reads a stale set, the others go on with the cached keys, unblocked.
        if cached is not None and (time.monotonic() - self._last_fetch < self.max_age or self._lock.locked()):
            return cached
        async with self._lock:
            if not self._keys:
                # Nothing cached (provider down at start): retry soon, so service resumes within seconds.
                interval = min(EMPTY_RETRY_SECONDS, self.refresh_interval)
            else:
                interval = self.max_age if kid in self._keys else self.refresh_interval
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
                discovery = await self.fetch(f"{self.authority}/v2.0/.well-known/openid-configuration")
                self.jwks_uri = str(discovery["jwks_uri"])
            jwks = (await self.fetch(self.jwks_uri))["keys"]
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("key set refresh for %s failed, keeping %d keys: %r", self.authority, len(self._keys), exc)
            return
        keys = {}
        for jwk in jwks if isinstance(jwks, list) else ():
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                continue
            try:
                # n and e only: an x5c chain in the key set is not needed to verify and is not trusted.
                keys[str(jwk["kid"])] = jwt.PyJWK({"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}, "RS256").key
            except (jwt.PyJWTError, KeyError, ValueError):
                continue
        self._keys = keys  # a withdrawn key is gone now, as it is from the provider


# endregion liftable: protect-fastapi-api (1 of 3)
