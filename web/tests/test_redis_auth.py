"""The session store logs in to Redis with the web's managed identity (guidance: identity-non-user-applications,
token-management): the user is the object id from WEB_SESSION_STORE, the password a token for Azure Cache for
Redis; a connection is opened again with a current token before its own expires (the pool's clock is a
setting); a refused or unobtainable token is a clean StoreUnavailable. Against the token-checking front.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from web.redis_auth import REDIS_SCOPE, RENEW_BEFORE_EXPIRY_SECONDS
from web.redis_store import RedisSessionStore, StoreUnavailable
from web.session_store import StoredRecord

from tests.support.redis import OBJECT_IDS, RedisFrontStack, SignerCredential

from .conftest import SIGNER

pytestmark = [pytest.mark.guidance("identity-non-user-applications"), pytest.mark.guidance("token-management")]


class PoolClock:
    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


def _store(front: RedisFrontStack, credential: Any, clock: Any = time.time) -> RedisSessionStore:
    return RedisSessionStore.connect(front.url, credential, lifetime=3600, clock=clock)


def test_the_store_logs_in_with_a_token_for_azure_cache_for_redis(redis_front: RedisFrontStack) -> None:
    credential = SignerCredential(SIGNER)

    async def scenario() -> StoredRecord | None:
        store = _store(redis_front, credential)
        try:
            await store.put(StoredRecord("k", 1.0, 1.0, b"sealed", None))
            return await store.get("k")
        finally:
            await store.close()

    found = asyncio.run(scenario())
    assert found is not None and found.data == b"sealed"
    assert set(credential.scopes) == {(REDIS_SCOPE,)}
    assert redis_front.front.counters.snapshot()["accepted"] == 1  # one connection, one login


def test_a_connection_is_opened_again_before_its_token_expires(redis_front: RedisFrontStack) -> None:
    credential, clock = SignerCredential(SIGNER), PoolClock()

    async def scenario() -> list[int]:
        store = _store(redis_front, credential, clock)
        logins = []
        try:
            for ahead in (0, 1800, credential.lifetime - RENEW_BEFORE_EXPIRY_SECONDS - 5, 0):
                clock.ahead = ahead
                await store.ping()
                logins.append(redis_front.front.counters.snapshot()["accepted"])
            # Within the margin of the token's expiry: closed, and opened with a current token.
            clock.ahead = credential.lifetime - RENEW_BEFORE_EXPIRY_SECONDS + 1
            await store.ping()
            logins.append(redis_front.front.counters.snapshot()["accepted"])
        finally:
            await store.close()
        return logins

    assert asyncio.run(scenario()) == [1, 1, 1, 1, 2]
    assert len(credential.scopes) == 2


def _ping(front: RedisFrontStack, credential: Any) -> None:
    async def scenario() -> None:
        store = _store(front, credential)
        try:
            await store.ping()
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_token_the_cache_refuses_is_a_clean_store_unavailable(redis_front: RedisFrontStack) -> None:
    # A valid token of another identity (the api's), used as the web's user: no access policy for it.
    with pytest.raises(StoreUnavailable, match="invalid username-password pair or user is disabled"):
        _ping(redis_front, SignerCredential(SIGNER, object_id=OBJECT_IDS["api"]))


class Unavailable(SignerCredential):
    async def get_token(self, *scopes: str, **_: Any) -> Any:
        raise ClientAuthenticationError("ManagedIdentityCredential authentication unavailable. No identity endpoint.")


def test_no_managed_identity_token_is_a_clean_store_unavailable(redis_front: RedisFrontStack) -> None:
    with pytest.raises(StoreUnavailable, match="no managed identity token for Redis: ManagedIdentityCredential"):
        _ping(redis_front, Unavailable(SIGNER))
    assert redis_front.front.counters.snapshot()["accepted"] == 0
