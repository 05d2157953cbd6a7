"""Where server-side sessions live: opaque, encrypted blobs under a hash of the session id.

`SessionStore` is what a store must provide: SQLite here for one process; Redis (redis_store.py) for
replicas that share sessions. `Sealer` encrypts each record at rest with AES-GCM
under a key generated at first run (owner-only file; Key Vault in Azure), binding the record key and
the field name in, so a blob copied to another row or field does not decrypt.
"""

# region liftable: bff-sign-in (4 of 4) requires: aiosqlite, cryptography
from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosqlite
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@dataclass
class StoredRecord:
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
    async def close(self) -> None: ...


def record_key(session_id: str) -> str:
    """Where a session id's record is stored: its SHA-256, so a copy of the store yields no usable cookie."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def cache_version(blob: bytes | None) -> str | None:
    """Tells one sealed blob from another without opening it: each seal has a fresh nonce, so any write, by
    any replica, gives a new version."""
    return hashlib.sha256(blob).hexdigest() if blob is not None else None


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # mkdir's mode is filtered by umask and ignored for an existing dir, so set it explicitly.
    path.chmod(0o700)


_COLUMNS = "key, created_at, last_seen, data, token_cache"


class SqliteSessionStore:
    """One SQLite file for one process. Writes run on aiosqlite's own thread. The read every request makes (one
    row by its primary key, from pages the OS holds in memory) runs on the event loop: microseconds, where a
    trip to the thread and back costs hundreds under load. WAL lets it read while a write is under way; if
    the file is busy all the same, the read goes to the thread and waits there, never on the loop."""

    def __init__(self, db: aiosqlite.Connection, reader: sqlite3.Connection) -> None:
        self._db, self._reader = db, reader

    @classmethod
    async def open(cls, path: Path) -> SqliteSessionStore:
        # Created owner-only before SQLite opens it (once, at start: the disk is touched on the loop here only).
        private_dir(path.parent)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(
            "CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, created_at REAL NOT NULL, "
            "last_seen REAL NOT NULL, data BLOB NOT NULL, token_cache BLOB)"
        )
        # Autocommit, and no waiting for a busy file (timeout 0): then the read goes to the thread instead.
        reader = sqlite3.connect(path, isolation_level=None, timeout=0)
        return cls(db, reader)

    async def get(self, key: str) -> StoredRecord | None:
        sql = f"SELECT {_COLUMNS} FROM sessions WHERE key = ?"  # noqa: S608  # nosec B608
        try:
            # fetchall: the statement runs to its end, so no read stays open between requests.
            rows = self._reader.execute(sql, (key,)).fetchall()
        except sqlite3.OperationalError:  # busy (a recovery under way): wait off the loop
            rows = list(await self._db.execute_fetchall(sql, (key,)))
        return StoredRecord(*rows[0]) if rows else None

    async def put(self, record: StoredRecord) -> None:
        await self._db.execute(
            f"INSERT OR REPLACE INTO sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608
            (record.key, record.created_at, record.last_seen, record.data, record.token_cache),
        )

    async def update(self, key: str, *, last_seen: float | None = None, token_cache: bytes | None = None) -> None:
        if last_seen is not None:
            await self._db.execute("UPDATE sessions SET last_seen = ? WHERE key = ?", (last_seen, key))
        if token_cache is not None:
            await self._db.execute("UPDATE sessions SET token_cache = ? WHERE key = ?", (token_cache, key))

    async def delete(self, *keys: str) -> None:
        await self._db.executemany("DELETE FROM sessions WHERE key = ?", [(k,) for k in keys])

    async def pop(self, key: str) -> StoredRecord | None:
        """Read and delete in one statement: of two concurrent callers, only one gets the record."""
        sql = f"DELETE FROM sessions WHERE key = ? RETURNING {_COLUMNS}"  # noqa: S608  # nosec B608
        rows = await self._db.execute_fetchall(sql, (key,))
        return StoredRecord(*next(iter(rows))) if rows else None

    async def purge(self, *, idle_before: float, created_before: float) -> int:
        sql = "DELETE FROM sessions WHERE last_seen < ? OR created_at < ?"
        async with self._db.execute(sql, (idle_before, created_before)) as cursor:
            return cursor.rowcount

    async def close(self) -> None:
        self._reader.close()
        await self._db.close()


class Sealer:
    """AES-256-GCM with the record key and field name as associated data."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    # zt: token-management
    @classmethod
    def from_key_file(cls, path: Path) -> Sealer:
        """The key generated at first run; in Azure, Key Vault's secret mounted read-only in its place."""
        if not path.exists():
            # Only a folder we write the key into is made owner-only; a mounted secret's folder is the platform's.
            private_dir(path.parent)
            # Written aside, then linked into place: no reader ever sees a half-written key, and when two
            # processes start at once the first link wins and both use that key.
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
            # Another key (rotated, or a copied store) or tampering: as if there were no record at all.
            return None


# endregion liftable: bff-sign-in (4 of 4)
