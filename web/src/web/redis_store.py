"""The session store several web replicas share: Redis, holding the same sealed blobs as the SQLite store
(Redis never sees a token, a user or a session id in the clear), each record expiring by itself at the
session's absolute lifetime. The web logs in to it with its managed identity's Entra token (redis_auth.py).

`open_store` picks the store WEB_SESSION_STORE names; `check_store` is the start-up check that turns an
unreachable Redis into one clear line instead of a traceback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from azure.core.credentials_async import AsyncTokenCredential

from .redis_auth import entra_pool, managed_identity
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

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        lifetime: int,
        namespace: str = DEFAULT_NAMESPACE,
        credential: AsyncTokenCredential | None = None,
    ) -> None:
        """`credential`: closed with the store, when the store owns it."""
        self._redis, self._lifetime, self._namespace = client, lifetime, namespace
        self._credential = credential
        self._update = client.register_script(_UPDATE_EXISTING)

    @classmethod
    def connect(
        cls,
        url: str,
        credential: AsyncTokenCredential,
        *,
        lifetime: int,
        namespace: str = DEFAULT_NAMESPACE,
        owns_credential: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> RedisSessionStore:
        """`credential`: the identity whose Entra token is the password (user: the object id in `url`)."""
        pool = entra_pool(
            url,
            credential,
            clock=clock,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            health_check_interval=30,
        )
        client = aioredis.Redis.from_pool(pool)
        return cls(client, lifetime=lifetime, namespace=namespace, credential=credential if owns_credential else None)

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
        if self._credential is not None:
            await self._credential.close()


def _record(key: str, found: Mapping[Any, Any]) -> StoredRecord | None:
    if not found or b"data" not in found:
        return None
    return StoredRecord(
        key, float(found[b"created_at"]), float(found[b"last_seen"]), found[b"data"], found.get(b"token_cache")
    )


async def open_store(settings: Settings, credential: AsyncTokenCredential | None = None) -> SessionStore:
    """The store WEB_SESSION_STORE names: the SQLite file in state_dir, or the shared Redis, logged in to with
    `credential` (default: the web's managed identity)."""
    if settings.session_store == SQLITE_STORE:
        return await SqliteSessionStore.open(settings.state_dir / "sessions.sqlite3")
    store = _connect(settings, credential, settings.session_absolute_timeout)
    try:
        await store.ping()
    except BaseException:
        await store.close()
        raise
    return store


def check_store(settings: Settings) -> str | None:
    """Why the configured store can't be used (None: it can), before the server starts."""
    if settings.session_store == SQLITE_STORE:
        return None

    async def ping() -> None:
        store = _connect(settings, None, 1)
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


def _connect(settings: Settings, credential: AsyncTokenCredential | None, lifetime: int) -> RedisSessionStore:
    # zt: identity-non-user-applications
    owned = credential is None
    credential = credential or managed_identity(settings.managed_identity_client_id)
    return RedisSessionStore.connect(settings.session_store, credential, lifetime=lifetime, owns_credential=owned)
