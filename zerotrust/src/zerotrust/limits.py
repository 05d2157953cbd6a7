"""Rate limits: token buckets per key, in memory and bounded, answered with 429 and `Retry-After`.

# zt: protect-api
Two limits at every tier. Per peer, before anything else runs (`PeerLimit`, plain ASGI: a flood of
anonymous or forged requests is refused before a token is parsed). Per caller, once the caller is known:
`caller_key` (tenant + object id for a user, tenant + calling app for an app-only token), checked where
zerotrust.protect has just validated the token (it calls `request.state.caller_limit`, which PeerLimit
puts there), and by session at the web app. Each process counts for itself: with N replicas a caller
gets up to N times the rate, and the platform's edge (Front Door's WAF, API Management) limits first.

The peer is the TCP peer. Behind a proxy (Azure Container Apps' ingress, Front Door) that is the proxy,
so every client shares one bucket; `X-Forwarded-For` is read only when the peer is one of
`<PREFIX>_RATE_TRUSTED_PROXIES`, and then the client is the nearest address in it that is not one of
them: a client can prepend any address it likes, never replace the one the trusted proxy appended.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

Clock = Callable[[], float]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# What a refusal carries (content type and body) for a wait of `seconds`.
Refusal = Callable[[int, Scope], tuple[bytes, bytes]]

# The key PeerLimit leaves in the request's state for zerotrust.protect.
CALLER_LIMIT = "caller_limit"


def settable_clock(offset_file: Path | None) -> Clock:
    """time.monotonic, plus the seconds written in `offset_file` when one is set: tests move time forward
    by writing to it instead of sleeping (refused in production, see settings)."""
    if offset_file is None:
        return time.monotonic

    def now() -> float:
        try:
            offset = float(offset_file.read_text().strip() or 0)
        except (OSError, ValueError):
            offset = 0.0
        return time.monotonic() + offset

    return now


class TokenBuckets:
    """One bucket per key: `burst` requests at once, refilled at `rate` a second. At most `max_keys` keys:
    when full, buckets idle long enough to be full again are dropped (they hold nothing), and if none is,
    the oldest tenth goes. `take` answers 0 (go on) or the seconds until a request would be let through."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("a rate above 0, a burst of at least 1 and room for at least one key")
        self.rate, self.burst, self.max_keys, self.clock = rate, float(burst), max_keys, clock
        # key -> [tokens left, when last counted]
        self._buckets: dict[Any, list[float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Any) -> float:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            self._buckets[key] = [self.burst - 1, now]
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return 0.0
        bucket[0] = tokens
        return (1 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        full = [k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * self.rate >= self.burst]
        if not full:
            # Every key is busy (a flood from many addresses): forget the oldest, never grow without bound.
            full = list(self._buckets)[: max(1, self.max_keys // 10)]
        for key in full:
            del self._buckets[key]


def retry_after(wait: float) -> int:
    """Whole seconds for `Retry-After`: never 0, which would invite an immediate retry."""
    return max(1, math.ceil(wait))


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _address_key(host: str) -> str:
    # An IPv6 client gets a /64 to itself (one subscriber's allocation): per address, it would have 2**64 keys.
    if ":" not in host:
        return host
    try:
        return ipaddress.IPv6Address(host).exploded[:19]
    except ValueError:
        return host


class PeerKey:
    """Who a request comes from, for the per-peer limit: the TCP peer, or behind `trusted` proxies the
    nearest address in X-Forwarded-For that is not one of them."""

    def __init__(self, trusted: tuple[Network, ...] = ()) -> None:
        self.trusted = trusted

    def __call__(self, scope: Scope) -> str:
        client = scope.get("client")
        host = client[0] if client else ""
        if self.trusted and self._is_trusted(host):
            hops = [h for k, v in scope["headers"] if k == b"x-forwarded-for" for h in v.decode("latin-1").split(",")]
            for hop in reversed(hops):
                hop = hop.strip()
                if not self._is_trusted(hop):
                    return _address_key(hop)
        return _address_key(host)

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)


def json_refusal(seconds: int, scope: Scope) -> tuple[bytes, bytes]:
    """The APIs' error shape (`error`, `error_description`, and the correlation id to quote)."""
    body = {
        "error": "too_many_requests",
        "error_description": f"Too many requests; wait {seconds} s and try again.",
        "correlation_id": (scope.get("state") or {}).get("correlation_id", ""),
    }
    return b"application/json", json.dumps(body).encode()


def text_refusal(seconds: int, scope: Scope) -> tuple[bytes, bytes]:
    """For a person's browser: a sentence."""
    return (
        b"text/plain; charset=utf-8",
        f"Too many requests from your address; wait {seconds} s and try again.\n".encode(),
    )


async def refuse(send: Send, seconds: int, content_type: bytes, body: bytes) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(seconds).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class RateLimits:
    """A service's limits: per peer (`peers`, keyed by `peer_key`) and per caller (`callers`)."""

    peers: TokenBuckets
    callers: TokenBuckets
    peer_key: Callable[[Scope], str]

    @classmethod
    def of(
        cls,
        *,
        peer_rate: float,
        peer_burst: float,
        caller_rate: float,
        caller_burst: float,
        trusted_proxies: Iterable[str] = (),
        clock: Clock = time.monotonic,
    ) -> RateLimits:
        return cls(
            TokenBuckets(peer_rate, peer_burst, clock=clock),
            TokenBuckets(caller_rate, caller_burst, clock=clock),
            PeerKey(parse_networks(trusted_proxies)),
        )

    @classmethod
    def configured(cls, settings: Any) -> RateLimits:
        """From a service's `rate_*` settings (zerotrust.settings.ServiceSettings)."""
        return cls.of(
            peer_rate=settings.rate_peer_per_second,
            peer_burst=settings.rate_peer_burst,
            caller_rate=settings.rate_caller_per_second,
            caller_burst=settings.rate_caller_burst,
            trusted_proxies=settings.rate_trusted_proxies,
            clock=settable_clock(settings.rate_clock_file),
        )

    def caller(self, principal: Any) -> float:
        """Seconds the caller must wait (0: go on); what zerotrust.protect calls with a validated principal."""
        return self.callers.take(caller_key(principal))


def caller_key(principal: Any) -> tuple[str, ...]:
    """Tenant + object id for a user; tenant + calling app for an app-only token (the app, not its service
    principal's id, is what the tenant granted and what a flood comes from)."""
    if principal.is_app_only:
        return ("app", principal.tid, principal.azp)
    return (principal.tid, principal.oid)


class PeerLimit:
    """Per-peer limit before the app runs; /healthz is never limited (a platform probe refused in someone
    else's flood would get a healthy replica restarted). Also hands the per-caller check to the app."""

    def __init__(
        self,
        app: ASGIApp,
        limits: RateLimits,
        refusal: Refusal = json_refusal,
        limited: Callable[[str], bool] | None = None,
    ) -> None:
        self.app, self.limits, self.refusal = app, limits, refusal
        self.limited = limited or (lambda path: path != "/healthz")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.limited(scope["path"]):
            wait = self.limits.peers.take(self.limits.peer_key(scope))
            if wait:
                seconds = retry_after(wait)
                await refuse(send, seconds, *self.refusal(seconds, scope))
                return
        scope.setdefault("state", {})[CALLER_LIMIT] = self.limits.caller
        await self.app(scope, receive, send)


__all__ = [
    "CALLER_LIMIT",
    "PeerKey",
    "PeerLimit",
    "RateLimits",
    "TokenBuckets",
    "caller_key",
    "json_refusal",
    "parse_networks",
    "retry_after",
    "settable_clock",
    "text_refusal",
]
