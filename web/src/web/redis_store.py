"""The session store several web replicas share: Redis, holding the same sealed blobs as the SQLite store
(Redis never sees a token, a user or a session id in the clear), each record expiring by itself at the
session's absolute lifetime.

`open_store` picks the store WEB_SESSION_STORE names; `check_store` is the start-up check that turns an
unreachable Redis into one clear line instead of a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis

from .session_store import SessionStore, SqliteSessionStore, StoredRecord
from .settings import SQLITE_STORE, Settings

DEFAULT_NAMESPACE = "web:session:"
CONNECT_TIMEOUT_SECONDS = 5.0

# HSET on a missing key would create half a record: a session ended elsewhere must stay ended.
_UPDATE_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HSET', KEYS[1], unpack(ARGV))
end
return 0
"""


class StoreUnavailable(RuntimeError):
    pass


class RedisSessionStore:
    """One Redis hash per record under `namespace` + record key; single-key commands only, so it also works
    on a clustered cache."""

    def __init__(self, client: aioredis.Redis, *, lifetime: int, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._redis, self._lifetime, self._namespace = client, lifetime, namespace
        self._update = client.register_script(_UPDATE_EXISTING)

    @classmethod
    def connect(
        cls, url: str, *, lifetime: int, password: str | None = None, namespace: str = DEFAULT_NAMESPACE
    ) -> RedisSessionStore:
        client = aioredis.Redis.from_url(
            url,
            password=password,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            health_check_interval=30,
        )
        return cls(client, lifetime=lifetime, namespace=namespace)

    def _key(self, key: str) -> str:
        return self._namespace + key

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from None

    async def get(self, key: str) -> StoredRecord | None:
        return _record(key, await self._redis.hgetall(self._key(key)))

    async def put(self, record: StoredRecord) -> None:
        k = self._key(record.key)
        fields: dict[str, bytes | str] = {
            "created_at": repr(record.created_at),
            "last_seen": repr(record.last_seen),
            "data": record.data,
        }
        if record.token_cache is not None:
            fields["token_cache"] = record.token_cache
        # Replaced whole (no field of an earlier record survives) and never kept past the absolute lifetime.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(k)
            pipe.hset(k, mapping=fields)  # type: ignore[arg-type]
            pipe.expire(k, self._lifetime)
            await pipe.execute()

    async def update(self, key: str, *, last_seen: float | None = None, token_cache: bytes | None = None) -> None:
        args: list[bytes | str] = []
        if last_seen is not None:
            args += ["last_seen", repr(last_seen)]
        if token_cache is not None:
            args += ["token_cache", token_cache]
        if args:
            await self._update(keys=[self._key(key)], args=args)

    async def delete(self, *keys: str) -> None:
        if keys:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.delete(self._key(key))
                await pipe.execute()

    async def pop(self, key: str) -> StoredRecord | None:
        """Read and delete in one transaction: of two concurrent callers, only one gets the record."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._key(key))
            pipe.delete(self._key(key))
            found, _ = await pipe.execute()
        return _record(key, found)

    async def purge(self, *, idle_before: float, created_before: float) -> int:
        # Redis drops each record at its absolute lifetime (EXPIRE); an idle one is refused and deleted at its
        # next use, and gone at that lifetime in any case.
        return 0

    async def close(self) -> None:
        await self._redis.aclose()


def _record(key: str, found: Mapping[Any, Any]) -> StoredRecord | None:
    if not found or b"data" not in found:
        return None
    return StoredRecord(
        key, float(found[b"created_at"]), float(found[b"last_seen"]), found[b"data"], found.get(b"token_cache")
    )


async def open_store(settings: Settings) -> SessionStore:
    """The store WEB_SESSION_STORE names: the SQLite file in state_dir, or the shared Redis."""
    if settings.session_store == SQLITE_STORE:
        return await SqliteSessionStore.open(settings.state_dir / "sessions.sqlite3")
    store = RedisSessionStore.connect(
        settings.session_store, lifetime=settings.session_absolute_timeout, password=_secret(settings)
    )
    await store.ping()
    return store


def check_store(settings: Settings) -> str | None:
    """Why the configured store can't be used (None: it can), before the server starts."""
    if settings.session_store == SQLITE_STORE:
        return None

    async def ping() -> None:
        store = RedisSessionStore.connect(settings.session_store, lifetime=1, password=_secret(settings))
        try:
            await store.ping()
        finally:
            await store.close()

    try:
        asyncio.run(ping())
    except StoreUnavailable as exc:
        where = urlsplit(settings.session_store)
        return f"WEB_SESSION_STORE: Redis at {where.hostname}:{where.port or 6379} is not usable ({exc})"
    return None


def _secret(settings: Settings) -> str | None:
    password = settings.session_store_password
    return password.get_secret_value() if password is not None else None
