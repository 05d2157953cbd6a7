"""Each signed-in user's MSAL token cache, and getting a token from it without blocking the event loop.

The cache is sealed in the session record (sessions.py, session_store.py) and kept decrypted in memory for a
few minutes while the record's version of it is unchanged, so a steady request costs one lookup. MSAL runs
on the event loop when the token is in the cache; when it needs the network (a refresh, a client assertion
from the managed identity) the same call is made again in a worker thread.
"""

# region liftable: bff-sign-in (3 of 4) requires: msal, anyio, cachetools
from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import msal
from cachetools import TTLCache

from .sessions import IdentityProviderUnavailable, Session, Sessions


@dataclass(frozen=True)
class Acquired:
    """What a silent acquisition gave: a token, or the token service's refusal (never shown raw)."""

    token: str | None
    error: str | None = None
    error_codes: tuple[int, ...] = ()


class NeedsNetwork(Exception):
    """MSAL was about to wait on the network on the event loop's thread: the call is redone in a worker thread.
    Not a requests exception, so MSAL never takes it for a network error and falls back on its own."""


_ON_LOOP: contextvars.ContextVar[bool] = contextvars.ContextVar("msal_on_loop", default=False)


def off_loop_only(call: Callable[..., Any]) -> Callable[..., Any]:
    """`call` (an MSAL HTTP method, a client assertion that asks the identity endpoint) refuses to run where
    it would block the event loop."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _ON_LOOP.get():
            raise NeedsNetwork
        return call(*args, **kwargs)

    return guarded


class LoopGuardedHttp:
    """MSAL's HTTP client, refusing to send from the event loop (see `TokenCaches.acquire`)."""

    def __init__(self, inner: Any) -> None:
        self.get, self.post, self.close = off_loop_only(inner.get), off_loop_only(inner.post), inner.close


def off_loop_credential(credential: Mapping[str, Any]) -> dict[str, Any]:
    """MSAL's client credential, its assertion callable (a managed identity's token: network) guarded."""
    return {k: off_loop_only(v) if k == "client_assertion" and callable(v) else v for k, v in credential.items()}


def msal_http_client() -> Any:
    """What MSAL builds for itself when given no HTTP client: a requests session retrying once."""
    import requests

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class HttpCache(dict[Any, Any]):
    """MSAL's HTTP cache (`http_cache=`), one per process: discovery is fetched once, not per user.

    MSAL also keeps a refused token request's answer (HTTP 400, e.g. AADSTS90094 "needs admin approval") and
    replays it for 60 s without asking again, force_refresh or not. A refusal that stopped being true (an
    administrator consented for the tenant) would then still show for a minute: here such an answer is kept
    at most `refusal_seconds`, and forgotten at once when the app learns the answer changed."""

    def __init__(self, refusal_seconds: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.refusal_seconds, self._clock = refusal_seconds, clock
        self._refusals: dict[str, float] = {}

    @staticmethod
    def _is_refusal(key: object) -> bool:
        # MSAL's key for its cache of refused requests ("UI required" answers) ends so.
        return isinstance(key, str) and key.startswith("POST ") and key.endswith(" 400")

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._is_refusal(key):
            self._refusals[key] = self._clock()
        super().__setitem__(key, value)

    def __getitem__(self, key: Any) -> Any:
        stored = self._refusals.get(key)
        if stored is not None and self._clock() - stored >= self.refusal_seconds:
            self.forget(key)
        return super().__getitem__(key)  # KeyError once forgotten: MSAL asks the token service again

    def forget(self, key: Any) -> None:
        self._refusals.pop(key, None)
        self.pop(key, None)

    def forget_refusals(self) -> None:
        """Every kept refusal dropped: the next request for each goes to the token service."""
        for key in list(self._refusals):
            self.forget(key)


def _silently(call: Callable[[], Any]) -> Any:
    # A cached token is a lookup of some microseconds: done right here, not worth a worker thread's ~180 us.
    # Anything that needs the network raises NeedsNetwork before it blocks.
    marker = _ON_LOOP.set(True)
    try:
        return call()
    finally:
        _ON_LOOP.reset(marker)


# MSAL gives an access token from its cache until 5 minutes before it expires (msal.application).
MSAL_EXPIRY_MARGIN = 300


@dataclass
class _Held:
    """A user's MSAL app and token cache in memory, the version of the sealed cache they came from, and the
    access tokens MSAL gave from them, by scopes, with when MSAL would stop giving each."""

    app: Any
    cache: msal.SerializableTokenCache
    version: str | None
    tokens: dict[tuple[str, ...], tuple[str, float]] = field(default_factory=dict)


# zt: token-management
class TokenCaches:
    """Each signed-in user's MSAL token cache: sealed in the session store, decrypted into memory for a few
    minutes (a steady request costs one lookup: no decryption, no extra store read, no network call, and no
    search of the cache while the token MSAL gave last is one it would give again), written back only when
    MSAL refreshed a token.

    Replicas share the store, not their memory: the copy here is used only while its version is the one
    the request's session record carries, so a cache another replica refreshed or emptied is read again."""

    def __init__(
        self,
        sessions: Sessions,
        make_app: Callable[[msal.TokenCache], Any],
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions, self.make_app = sessions, make_app
        # Shared by every user's MSAL app (make_app passes it as http_cache).
        self.http_cache = HttpCache()
        self._memory: TTLCache[str, _Held] = TTLCache(1000, ttl)
        self.clock = clock

    async def acquire(self, session: Session, scopes: list[str], *, force_refresh: bool = False) -> Acquired | None:
        """A token for `scopes`, silently: from the user's cache, else with the refresh token. None when there
        is nothing to try (sign in); otherwise the token, or why the token service refused it. force_refresh
        asks the token service again, which checks the grant again (for permissions that can be withdrawn)."""
        # region quote: acquire-silently
        held = await self._held(session)
        if held is None:
            return None
        if not force_refresh and (reused := held.tokens.get(tuple(scopes))) and self.clock() < reused[1]:
            return Acquired(reused[0])  # the one MSAL gave last, and would give again
        app = held.app
        accounts = [a for a in app.get_accounts() if a.get("home_account_id") == session.user.home_account_id]
        if not accounts:
            return None

        def silent() -> Any:
            return app.acquire_token_silent_with_error(scopes, accounts[0], force_refresh=force_refresh)

        try:
            try:
                if force_refresh:
                    raise NeedsNetwork
                result = _silently(silent)
            except NeedsNetwork:
                result = await anyio.to_thread.run_sync(silent)
        except OSError:
            raise IdentityProviderUnavailable("token endpoint") from None
        if held.cache.has_state_changed:
            held = await self._save(session, held)
        if result and "access_token" in result:
            held.tokens[tuple(scopes)] = (str(result["access_token"]), self._reusable_until(result))
            return Acquired(str(result["access_token"]))
        codes = result.get("error_codes") if result else None
        found = tuple(c for c in codes if isinstance(c, int)) if isinstance(codes, list) else ()
        return Acquired(None, str(result.get("error", "unknown"))[:100] if result else "no_token", found)

        # endregion

    def _reusable_until(self, result: dict[str, Any]) -> float:
        """When MSAL would stop giving this token from its cache: 5 minutes before it expires, or at its
        `refresh_on` (a long-lived token MSAL renews early)."""
        until = self.clock() + float(result.get("expires_in", 0)) - MSAL_EXPIRY_MARGIN
        refresh_on = result.get("refresh_on")
        return min(until, float(refresh_on)) if isinstance(refresh_on, int | float) else until

    async def cache(self, session: Session) -> msal.SerializableTokenCache | None:
        """The user's token cache, to read what the app holds for them (never to hand a token out)."""
        held = await self._held(session)
        return held.cache if held else None

    async def _held(self, session: Session) -> _Held | None:
        held = self._memory.get(session.key)
        if held is not None and held.version == session.cache_version:
            return held
        serialized = await self.sessions.token_cache(session)
        if serialized is None:
            self.forget(session.key)
            return None
        cache = msal.SerializableTokenCache()
        cache.deserialize(serialized)
        app = await anyio.to_thread.run_sync(self.make_app, cache)
        held = self._memory[session.key] = _Held(app, cache, session.cache_version)
        return held

    async def _save(self, session: Session, held: _Held) -> _Held:
        await self.sessions.save_token_cache(session, held.cache.serialize())
        # A new version of the cache: what was reused from the old one is not carried over.
        saved = self._memory[session.key] = _Held(held.app, held.cache, session.cache_version)
        return saved

    # zt: secure-with-cae
    async def evict(self, session: Session) -> None:
        """Every token held for the session's user is dropped (a claims challenge: none may be used again)."""
        held = await self._held(session)
        if held is not None:
            for account in held.app.get_accounts():
                if account.get("home_account_id") == session.user.home_account_id:
                    await anyio.to_thread.run_sync(held.app.remove_account, account)
            await self.sessions.save_token_cache(session, held.cache.serialize())
        self.forget(session.key)

    def forget(self, key: str) -> None:
        self._memory.pop(key, None)


# endregion liftable: bff-sign-in (3 of 4)
