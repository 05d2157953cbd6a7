"""Server-side sessions: the browser holds an opaque random id, everything else stays here.

A record holds the session (who signed in, the CSRF token, timestamps) and that user's MSAL token cache,
both sealed at rest (session_store.py). Sessions end after `idle_timeout` without use and `absolute_timeout`
after sign-in however active. A sign-in in progress (MSAL's flow: state, nonce, PKCE verifier) is not
stored here at all: it is sealed into the browser's sign-in cookie, so an anonymous request (a login link
in a cross-site <img>, a flood of them) costs this server no storage. `clock` is a setting, so tests move
time instead of waiting for it.
"""

# region liftable: bff-sign-in (2 of 4) requires: fastapi
from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fastapi import HTTPException

from .session_store import Sealer, SessionStore, StoredRecord, cache_version, record_key

# A sign-in (login page to callback) must complete within this many seconds.
SIGN_IN_TTL = 600
# last_seen is written at most this often, so a steady stream of requests is mostly reads.
TOUCH_INTERVAL = 60
# Expired records are swept at most this often, piggybacking on session creation.
PURGE_INTERVAL = 300
MAX_ID_LENGTH = 100
# A browser keeps a cookie of up to 4096 bytes, name and attributes included: a sealed sign-in stays below.
MAX_SIGN_IN_COOKIE = 3800
_SIGN_IN = "sign_in|cookie"


@dataclass(frozen=True)
class SignedInUser:
    """Who signed in, from the ID token (display and account lookup only; no token kept here)."""

    # zt: zero-trust-token-customization
    # Known by oid + tid, immutable; name and username are shown, never used to find anyone's data.
    oid: str
    tid: str
    name: str | None
    username: str | None
    login_hint: str | None = None
    # Optional ID token claims (acct, ctry) the web app's registration asks for: display only.
    account_type: str | None = None
    country: str | None = None
    # As the ID token said them, for the chain page's web column: the issuer MSAL checked, the token version,
    # and the subject (pairwise: another app sees another `sub` for the same person).
    issuer: str | None = None
    token_version: str | None = None
    subject: str | None = None

    @classmethod
    def from_claims(cls, oid: str, tid: str, claims: dict[str, Any]) -> SignedInUser:
        """From a checked ID token's claims: strings of a sane length, or nothing."""

        def text(name: str, longest: int = 1000) -> str | None:
            value = claims.get(name)
            return value if isinstance(value, str) and len(value) <= longest else None

        # zt: zero-trust-token-customization
        # Optional claims: acct says member (0) or guest (1), ctry the country. Shown here; the api decides.
        acct = claims.get("acct")
        account_type = {0: "member", 1: "guest"}.get(acct) if type(acct) is int else None
        return cls(
            oid,
            tid,
            text("name"),
            text("preferred_username"),
            text("login_hint"),
            account_type,
            text("ctry", 8),
            issuer=text("iss", 300),
            token_version=text("ver", 8),
            subject=text("sub", 300),
        )

    @property
    def home_account_id(self) -> str:
        # MSAL's account key: client_info uid.utid, which is oid.tid for work accounts.
        return f"{self.oid}.{self.tid}"


@dataclass
class Session:
    id: str
    created_at: float
    last_seen: float
    csrf_token: str
    user: SignedInUser
    # Which sealed token cache the store held when this request read the record (cache_version()).
    cache_version: str | None = None

    @cached_property  # a hash, asked for several times a request
    def key(self) -> str:
        return record_key(self.id)

    def csrf_ok(self, presented: object) -> bool:
        return isinstance(presented, str) and hmac.compare_digest(presented.encode(), self.csrf_token.encode())


@dataclass
class PendingSignIn:
    """A sign-in in progress: MSAL's flow and where to go next. `id`: the sign-in cookie's value, all of it
    sealed. `replaces`: the session it will replace (deleted when the new one starts). `extra`: what the app
    keeps with the flow (sealed with it)."""

    id: str
    flow: dict[str, Any]
    next: str
    replaces: str | None
    created_at: float
    extra: dict[str, Any] | None = None


class Sessions:
    """Creates, finds, rotates and ends sessions over a `SessionStore`, enforcing the timeouts."""

    def __init__(
        self,
        store: SessionStore,
        sealer: Sealer,
        *,
        idle_timeout: float,
        absolute_timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.sealer, self.clock = store, sealer, clock
        self.idle_timeout, self.absolute_timeout = idle_timeout, absolute_timeout
        self._last_purge = 0.0

    def _seal(self, key: str, data: dict[str, Any]) -> bytes:
        return self.sealer.seal(json.dumps(data).encode(), f"{key}|data")

    def _unseal(self, record: StoredRecord, kind: str) -> dict[str, Any] | None:
        raw = self.sealer.open(record.data, f"{record.key}|data")
        data = json.loads(raw) if raw is not None else None
        return data if isinstance(data, dict) and data.get("kind") == kind else None

    async def load(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            return None
        key = record_key(session_id)
        record = await self.store.get(key)
        if record is None:
            return None
        now = self.clock()
        if now - record.last_seen > self.idle_timeout or now - record.created_at > self.absolute_timeout:
            await self.store.delete(key)
            return None
        data = self._unseal(record, "session")
        if data is None:
            return None
        if now - record.last_seen > TOUCH_INTERVAL:
            await self.store.update(key, last_seen=now)
            record.last_seen = now
        user, version = SignedInUser(**data["user"]), cache_version(record.token_cache)
        return Session(session_id, record.created_at, record.last_seen, data["csrf"], user, version)

    # zt: user-authentication
    async def start(self, user: SignedInUser, token_cache: str, *, replaces: list[str]) -> Session:
        """A brand-new session id at every sign-in; the sessions it replaces are deleted."""
        await self._maybe_purge()
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), now, now, secrets.token_urlsafe(32), user)
        data = {"kind": "session", "csrf": session.csrf_token, "user": dataclasses.asdict(user)}
        cache = self.sealer.seal(token_cache.encode(), f"{session.key}|token_cache")
        session.cache_version = cache_version(cache)
        old = [k for k in replaces if k and k != session.key]
        if old:
            await self.store.delete(*old)
        await self.store.put(StoredRecord(session.key, now, now, self._seal(session.key, data), cache))
        return session

    # zt: token-management
    async def end(self, session_id: str | None) -> None:
        """Sign-out: the session and its token cache are gone from the store."""
        if session_id:
            await self.store.delete(record_key(session_id))

    async def token_cache(self, session: Session) -> str | None:
        """The user's token cache as the store holds it now; session.cache_version follows what was read."""
        record = await self.store.get(session.key)
        session.cache_version = cache_version(record.token_cache if record is not None else None)
        if record is None or record.token_cache is None:
            return None
        raw = self.sealer.open(record.token_cache, f"{session.key}|token_cache")
        return raw.decode() if raw is not None else None

    async def save_token_cache(self, session: Session, serialized: str) -> None:
        blob = self.sealer.seal(serialized.encode(), f"{session.key}|token_cache")
        await self.store.update(session.key, token_cache=blob)
        session.cache_version = cache_version(blob)

    # zt: user-authentication
    async def begin_sign_in(
        self, flow: dict[str, Any], next_path: str, replaces: str | None, *, extra: dict[str, Any] | None = None
    ) -> PendingSignIn:
        """The sign-in sealed (AES-GCM) for the browser's cookie: it can't be read, changed or made up there,
        and nothing is stored here. MSAL's `auth_uri` is left out: the browser is sent there, it is not needed
        back. Used once: the callback clears the cookie, and the identity provider redeems a code once."""
        now = self.clock()
        kept = {k: v for k, v in flow.items() if k != "auth_uri"}
        replaced = record_key(replaces) if replaces else None
        data = {"kind": "sign_in", "flow": kept, "next": next_path, "replaces": replaced, "extra": extra, "at": now}
        plain = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        sealed = base64.urlsafe_b64encode(self.sealer.seal(plain, _SIGN_IN)).rstrip(b"=").decode()
        if len(sealed) > MAX_SIGN_IN_COOKIE:
            raise ValueError("the sign-in is too large for its cookie")
        return PendingSignIn(sealed, kept, next_path, replaced, now, extra)

    async def take_sign_in(self, sealed: str | None) -> PendingSignIn | None:
        """The sign-in this browser's cookie holds, if this server sealed it and it has not expired."""
        if not sealed or len(sealed) > MAX_SIGN_IN_COOKIE:
            return None
        try:
            blob = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        except ValueError:
            return None
        raw = self.sealer.open(blob, _SIGN_IN)
        data = json.loads(raw) if raw is not None else None
        if not isinstance(data, dict) or data.get("kind") != "sign_in" or type(data.get("at")) not in (int, float):
            return None
        at = float(data["at"])
        if not 0 <= self.clock() - at <= SIGN_IN_TTL:
            return None
        extra = data.get("extra")
        return PendingSignIn(
            sealed,
            data["flow"],
            data["next"],
            data.get("replaces"),
            at,
            extra if isinstance(extra, dict) else None,
        )

    async def _maybe_purge(self) -> None:
        now = self.clock()
        if now - self._last_purge < PURGE_INTERVAL:
            return
        self._last_purge = now
        await self.store.purge(idle_before=now - self.idle_timeout, created_before=now - self.absolute_timeout)


class IdentityProviderUnavailable(HTTPException):
    def __init__(self, what: str) -> None:
        super().__init__(503, f"The identity provider could not be reached ({what}).")


# endregion liftable: bff-sign-in (2 of 4)
