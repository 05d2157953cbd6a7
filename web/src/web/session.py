"""Server-side sessions: the browser holds an opaque random id, everything else stays here.

A record holds the session (who signed in, the CSRF token, timestamps) and that user's MSAL token
cache, both encrypted at rest with AES-GCM under a key generated at first run (file mode 0600).
Records are stored under a hash of the session id, so a copy of the store yields no usable
cookie. `SessionStore` is what a shared store must provide (SQLite here; Redis for several
replicas implements the same six calls).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# A sign-in (login page to callback) must complete within this many seconds.
SIGN_IN_TTL = 600
# last_seen is written at most this often, so a steady stream of requests is mostly reads.
TOUCH_INTERVAL = 60
# Expired records are swept at most this often, piggybacking on session creation.
PURGE_INTERVAL = 300


@dataclass
class StoredRecord:
    """A row as the store keeps it: opaque, encrypted blobs under a hashed key."""

    key: str
    created_at: float
    last_seen: float
    data: bytes
    token_cache: bytes | None = None


class SessionStore(Protocol):
    async def get(self, key: str) -> StoredRecord | None: ...
    async def put(self, record: StoredRecord) -> None: ...
    async def update(self, key: str, *, last_seen: float | None = None, token_cache: bytes | None = None) -> None: ...
    async def delete(self, *keys: str) -> None: ...
    async def pop(self, key: str) -> StoredRecord | None: ...
    async def purge(self, *, idle_before: float, created_before: float) -> int: ...


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # mkdir's mode is filtered by umask and ignored for an existing dir, so set it explicitly.
    path.chmod(0o700)


class SqliteSessionStore:
    """One SQLite file; fine for one process. Each call is a short local transaction (WAL)."""

    def __init__(self, path: Path) -> None:
        _private_dir(path.parent)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, created_at REAL NOT NULL, "
            "last_seen REAL NOT NULL, data BLOB NOT NULL, token_cache BLOB)"
        )

    async def get(self, key: str) -> StoredRecord | None:
        row = self._db.execute(
            "SELECT key, created_at, last_seen, data, token_cache FROM sessions WHERE key = ?", (key,)
        ).fetchone()
        return StoredRecord(*row) if row else None

    async def put(self, record: StoredRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO sessions (key, created_at, last_seen, data, token_cache) VALUES (?, ?, ?, ?, ?)",
            (record.key, record.created_at, record.last_seen, record.data, record.token_cache),
        )

    async def update(self, key: str, *, last_seen: float | None = None, token_cache: bytes | None = None) -> None:
        if last_seen is not None:
            self._db.execute("UPDATE sessions SET last_seen = ? WHERE key = ?", (last_seen, key))
        if token_cache is not None:
            self._db.execute("UPDATE sessions SET token_cache = ? WHERE key = ?", (token_cache, key))

    async def delete(self, *keys: str) -> None:
        self._db.executemany("DELETE FROM sessions WHERE key = ?", [(k,) for k in keys])

    async def pop(self, key: str) -> StoredRecord | None:
        """Read and delete in one statement: of two concurrent callers, only one gets the record."""
        row = self._db.execute(
            "DELETE FROM sessions WHERE key = ? RETURNING key, created_at, last_seen, data, token_cache",
            (key,),
        ).fetchone()
        return StoredRecord(*row) if row else None

    async def purge(self, *, idle_before: float, created_before: float) -> int:
        cursor = self._db.execute(
            "DELETE FROM sessions WHERE last_seen < ? OR created_at < ?", (idle_before, created_before)
        )
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()


class Sealer:
    """AES-256-GCM; the record key and the field name are bound in as associated data, so a blob
    copied to another row or field does not decrypt."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path: Path) -> Sealer:  # zt: token-management
        """The key generated at first run; in Azure it would come from Key Vault instead."""
        _private_dir(path.parent)
        if not path.exists():
            # Written aside, then linked into place: no reader ever sees a half-written key, and
            # when two processes start at once the first link wins and both use that key.
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(base64.b64encode(AESGCM.generate_key(bit_length=256)))
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return cls(base64.b64decode(path.read_bytes().strip()))

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, blob: bytes, context: str) -> bytes | None:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], context.encode())
        except (InvalidTag, ValueError):
            # Another key (rotated, or a copied store) or tampering: treat as no session at all.
            return None


def record_key(session_id: str) -> str:
    """Where a session id's record is stored: its SHA-256, never the id itself."""
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class SignedInUser:
    """Who signed in, from the ID token (display and account lookup only; no token kept here)."""

    # zt: zero-trust-token-customization - known by oid + tid, immutable; name and username are
    # shown, never used to find anyone's data (a rename changes nothing a user reaches).
    oid: str
    tid: str
    name: str | None
    username: str | None
    login_hint: str | None = None
    # Optional ID token claims (acct, ctry) the web app's registration asks for: display only.
    account_type: str | None = None
    country: str | None = None

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

    @property
    def key(self) -> str:
        return record_key(self.id)

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_token.encode())


@dataclass
class PendingSignIn:
    """An auth code flow in progress: MSAL's flow (state, nonce, PKCE verifier) and where to go next."""

    id: str
    flow: dict[str, Any]
    next: str
    # The session this sign-in replaces, deleted when the new one starts (session rotation).
    replaces: str | None
    created_at: float
    # zt: acquire-application-authorization-to-access-resources
    # More permission asked for by a signed-in person (incremental consent): who asked (oid, tid),
    # and the write waiting for it, if any, done once when they come back. Kept here, server-side
    # and sealed, taken with the flow in one step, so a replayed answer can't repeat it.
    incremental: dict[str, Any] | None = None


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
        self.store = store
        self.sealer = sealer
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self.clock = clock
        self._last_purge = 0.0

    def _seal(self, key: str, obj: dict[str, Any]) -> bytes:
        return self.sealer.seal(json.dumps(obj).encode(), f"{key}|data")

    def _unseal(self, record: StoredRecord) -> dict[str, Any] | None:
        raw = self.sealer.open(record.data, f"{record.key}|data")
        data = json.loads(raw) if raw is not None else None
        return data if isinstance(data, dict) else None

    async def load(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 100:
            return None
        key = record_key(session_id)
        record = await self.store.get(key)
        if record is None:
            return None
        now = self.clock()
        if now - record.last_seen > self.idle_timeout or now - record.created_at > self.absolute_timeout:
            await self.store.delete(key)
            return None
        data = self._unseal(record)
        if data is None or data.get("kind") != "session":
            return None
        if now - record.last_seen > TOUCH_INTERVAL:
            await self.store.update(key, last_seen=now)
            record.last_seen = now
        return Session(session_id, record.created_at, record.last_seen, data["csrf"], SignedInUser(**data["user"]))

    async def start(
        self, user: SignedInUser, token_cache: str, *, replaces: list[str]
    ) -> Session:  # zt: user-authentication
        """A brand-new session id at every sign-in; the sessions it replaces are deleted."""
        await self._maybe_purge()
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), now, now, secrets.token_urlsafe(32), user)
        data = {"kind": "session", "csrf": session.csrf_token, "user": dataclasses.asdict(user)}
        record = StoredRecord(
            session.key,
            now,
            now,
            self._seal(session.key, data),
            self.sealer.seal(token_cache.encode(), f"{session.key}|token_cache"),
        )
        old = [k for k in replaces if k and k != session.key]
        if old:
            await self.store.delete(*old)
        await self.store.put(record)
        return session

    async def end(self, session_id: str | None) -> None:  # zt: token-management
        """Sign-out: the session and its token cache are gone from the store."""
        if session_id:
            await self.store.delete(record_key(session_id))

    async def token_cache(self, session: Session) -> str | None:  # zt: token-management
        record = await self.store.get(session.key)
        if record is None or record.token_cache is None:
            return None
        raw = self.sealer.open(record.token_cache, f"{session.key}|token_cache")
        return raw.decode() if raw is not None else None

    async def save_token_cache(self, session: Session, serialized: str) -> None:  # zt: token-management
        blob = self.sealer.seal(serialized.encode(), f"{session.key}|token_cache")
        await self.store.update(session.key, token_cache=blob)

    # -- sign-ins in progress -------------------------------------------------------------------

    async def begin_sign_in(
        self,
        flow: dict[str, Any],
        next_path: str,
        replaces: str | None,
        *,
        incremental: dict[str, Any] | None = None,
    ) -> PendingSignIn:
        await self._maybe_purge()
        pending = PendingSignIn(
            secrets.token_urlsafe(32),
            flow,
            next_path,
            record_key(replaces) if replaces else None,
            self.clock(),
            incremental,
        )
        key = record_key(pending.id)
        data = {
            "kind": "sign_in",
            "flow": flow,
            "next": next_path,
            "replaces": pending.replaces,
            "incremental": incremental,
        }
        await self.store.put(StoredRecord(key, pending.created_at, pending.created_at, self._seal(key, data)))
        return pending

    async def take_sign_in(self, sign_in_id: str | None) -> PendingSignIn | None:
        """The pending sign-in, removed as it is read: a replayed callback finds nothing."""
        if not sign_in_id or len(sign_in_id) > 100:
            return None
        record = await self.store.pop(record_key(sign_in_id))
        if record is None:
            return None
        data = self._unseal(record)
        if data is None or data.get("kind") != "sign_in" or self.clock() - record.created_at > SIGN_IN_TTL:
            return None
        incremental = data.get("incremental")
        return PendingSignIn(
            sign_in_id,
            data["flow"],
            data["next"],
            data.get("replaces"),
            record.created_at,
            incremental if isinstance(incremental, dict) else None,
        )

    async def _maybe_purge(self) -> None:
        now = self.clock()
        if now - self._last_purge < PURGE_INTERVAL:
            return
        self._last_purge = now
        await self.store.purge(idle_before=now - self.idle_timeout, created_before=now - self.absolute_timeout)
