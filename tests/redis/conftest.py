"""The private Redis behind its token front, checking tokens against the session's emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devtools.redis_server import RedisServer

from tests.support.launch import LiveEmulator
from tests.support.redis import RedisFrontStack, start_redis_front


@pytest.fixture
def front(live: LiveEmulator, redis_server: RedisServer) -> Iterator[RedisFrontStack]:
    """A front of its own (its clock, its counters) before the session's private Redis, emptied first."""
    stack = start_redis_front(redis_server, live.tls, live.authority())
    stack.clear()
    yield stack
    stack.stop()
