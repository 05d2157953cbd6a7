"""Token buckets and the peer key, with a clock the test moves (nothing here sleeps)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from zerotrust.limits import (
    PeerKey,
    PeerLimit,
    RateLimits,
    TokenBuckets,
    caller_key,
    parse_networks,
    retry_after,
    settable_clock,
)

pytestmark = pytest.mark.guidance("protect-api")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_then_a_wait_that_says_how_long() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back every half second
    assert buckets.take("b") == 0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0
    clock.now += 10  # a full bucket again, never more than the burst
    assert [buckets.take("a") for _ in range(4)][:3] == [0, 0, 0]
    assert buckets.take("a") > 0


def test_refused_requests_do_not_buy_more_wait() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1, burst=1, clock=clock)
    buckets.take("a")
    waits = [buckets.take("a") for _ in range(100)]
    assert max(waits) == pytest.approx(1.0)  # hammering does not push the retry further away
    clock.now += 1
    assert buckets.take("a") == 0


def test_memory_is_bounded_idle_keys_go_first() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1, burst=2, max_keys=100, clock=clock)
    buckets.take("busy")
    buckets.take("busy")
    for n in range(99):
        buckets.take(f"idle-{n}")
    clock.now += 1.5  # the idle ones are full again (burst 2 at 1/s, from 1 left); "busy" is not
    buckets.take("new")
    assert len(buckets) <= 100
    assert buckets.take("busy") == 0 and buckets.take("busy") > 0  # its count was kept, not reset
    # A flood of new keys, all busy: the table never grows past its bound.
    for n in range(1000):
        buckets.take(f"flood-{n}")
    assert len(buckets) <= 100


@pytest.mark.parametrize("wait,seconds", [(0.001, 1), (1.0, 1), (1.2, 2), (59.5, 60)])
def test_retry_after_is_whole_seconds_and_never_zero(wait: float, seconds: int) -> None:
    assert retry_after(wait) == seconds


def _scope(client: str, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", f.encode()) for f in forwarded]
    return {"type": "http", "client": (client, 50000), "headers": headers, "path": "/tasks"}


def test_the_peer_is_the_tcp_peer_and_x_forwarded_for_is_ignored_unless_its_proxy_is_trusted() -> None:
    untrusting = PeerKey()
    assert untrusting(_scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    trusting = PeerKey(parse_networks(["10.0.0.0/8"]))
    # From the trusted ingress: the client it appended, not what the client itself prepended.
    assert trusting(_scope("10.1.2.3", "6.6.6.6, 198.51.100.1")) == "198.51.100.1"
    assert trusting(_scope("10.1.2.3", "6.6.6.6", "198.51.100.1, 10.9.9.9")) == "198.51.100.1"
    # From anyone else, the header means nothing.
    assert trusting(_scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    # Nothing usable in it: the proxy itself.
    assert trusting(_scope("10.1.2.3")) == "10.1.2.3"


def test_an_ipv6_peer_is_counted_by_its_64() -> None:
    key = PeerKey()
    assert key(_scope("2001:db8:1:2::1")) == key(_scope("2001:db8:1:2:ffff::9"))
    assert key(_scope("2001:db8:1:2::1")) != key(_scope("2001:db8:1:3::1"))


class _Who:
    def __init__(self, app_only: bool, tid: str = "t", oid: str = "o", azp: str = "a") -> None:
        self.is_app_only, self.tid, self.oid, self.azp = app_only, tid, oid, azp


def test_callers_are_a_user_in_a_tenant_or_an_app_in_a_tenant() -> None:
    assert caller_key(_Who(False)) == ("t", "o")
    assert caller_key(_Who(True)) == ("app", "t", "a")
    assert caller_key(_Who(False, tid="other")) != caller_key(_Who(False))


def test_the_clock_setting_moves_time_forward_from_a_file(tmp_path: Path) -> None:
    offset = tmp_path / "clock"
    clock = settable_clock(offset)
    before = clock()
    offset.write_text("3600")
    assert clock() - before >= 3600
    offset.write_text("not a number")  # a broken file is no offset, never an error
    assert clock() - before < 3600


def test_the_middleware_answers_429_with_retry_after_and_spares_healthz() -> None:
    clock = Clock()
    limits = RateLimits(TokenBuckets(1, 2, clock=clock), TokenBuckets(1, 2, clock=clock), PeerKey())
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        assert callable(scope["state"]["caller_limit"])  # the per-caller check, for zerotrust.protect
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guarded = PeerLimit(app, limits)
    answers: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        answers.append(message)

    async def call(path: str) -> None:
        await guarded({**_scope("192.0.2.1"), "path": path, "state": {"correlation_id": "cid-1"}}, None, send)

    for path in ("/tasks", "/tasks", "/tasks", "/healthz"):
        asyncio.run(call(path))
    starts = [m for m in answers if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [200, 200, 429, 200]
    assert (b"retry-after", b"1") in starts[2]["headers"]
    body = next(m["body"] for m in answers[answers.index(starts[2]) :] if m["type"] == "http.response.body")
    assert b'"error": "too_many_requests"' in body and b"cid-1" in body
    assert reached == ["/tasks", "/tasks", "/healthz"]
