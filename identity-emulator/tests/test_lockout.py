"""Smart lockout's counting and what an anonymous flood can make the emulator keep, with a clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest
from identity_emulator.lockout import Lockouts, limited
from identity_emulator.state import MAX_PENDING, PendingSignIn, Store

pytestmark = pytest.mark.guidance("user-authentication")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_lock_at_the_threshold_for_its_time_then_a_fresh_count() -> None:
    clock = Clock()
    locks = Lockouts(threshold=3, seconds=60, clock=clock)
    for _ in range(2):
        locks.failed("alice")
    assert locks.wait("alice") == 0
    locks.failed("alice")
    assert locks.wait("alice") == 60 and locks.wait("bob") == 0
    clock.now += 59
    assert locks.wait("alice") == pytest.approx(1)
    clock.now += 1
    assert locks.wait("alice") == 0
    locks.failed("alice")  # the count started again with the lock
    assert locks.wait("alice") == 0


def test_failures_long_ago_are_forgotten_and_a_success_forgets_them() -> None:
    clock = Clock()
    locks = Lockouts(threshold=3, seconds=60, clock=clock)
    locks.failed("alice")
    locks.failed("alice")
    clock.now += 61
    locks.failed("alice")
    assert locks.wait("alice") == 0  # two of the three were over a minute ago
    locks.failed("alice")
    locks.succeeded("alice")
    locks.failed("alice")
    assert locks.wait("alice") == 0


def test_memory_for_failures_is_bounded() -> None:
    locks = Lockouts(threshold=3, seconds=60, clock=Clock(), max_keys=100)
    for n in range(1000):
        locks.failed(f"198.51.100.{n}")
    assert len(locks._keys) <= 100


def test_only_the_token_and_sign_in_endpoints_are_throttled() -> None:
    tenant = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
    for path in ("token", "devicecode", "authorize"):
        assert limited(f"/{tenant}/oauth2/v2.0/{path}")
    assert limited(f"/{tenant}/login") and limited(f"/{tenant}/consent") and limited("/devicelogin")
    assert limited("/admin/signin")
    for path in ("/healthz", "/admin", f"/{tenant}/discovery/v2.0/keys", "/v1.0/me", "/msi/token"):
        assert not limited(path)


def test_a_flood_of_authorization_requests_keeps_the_newest_only(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for n in range(MAX_PENDING + 50):
        store.pending[str(n)] = PendingSignIn(str(n), "authorize", "t", "c", [], created=1000.0)
    store.prune(1001.0, 600)
    assert len(store.pending) == MAX_PENDING and str(MAX_PENDING + 49) in store.pending and "0" not in store.pending
