"""Entra's smart lockout and throttling, as the emulator plays them.

Smart lockout (Entra ID: 10 failed sign-ins lock an account for 60 seconds by default, longer each time in
Entra; an administrator can change both): after `lockout_threshold` wrong passwords for one account, that
account's sign-ins are refused for `lockout_seconds`, the right password included, with AADSTS50053. Entra
also blocks sign-ins from an address that sprays passwords across accounts; here, `lockout_peer_threshold`
failures from one peer (whatever the accounts, unknown ones too) block that peer the same way. Failures
are forgotten after `lockout_seconds` without one, and an account's at its next successful sign-in.

Throttling: Entra answers 429 with `Retry-After` to a client or an address that sends too many requests
(MSAL then waits before asking again). Here per peer on the token and sign-in endpoints, and per client
application (once it has authenticated) on the token endpoint; see settings.

The clock is a setting (EMULATOR_RATE_CLOCK_FILE), so tests pass a lockout without waiting for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from zerotrust.limits import Clock, RateLimits, retry_after

from .directory import User
from .errors import EntraError
from .settings import EmulatorSettings

# An address's failures are kept for this many addresses at most; the oldest go first.
MAX_PEERS = 10_000
# The endpoints a flood from one address is throttled on: tokens, and every step of a sign-in.
LIMITED = ("/oauth2/v2.0/token", "/oauth2/v2.0/devicecode", "/oauth2/v2.0/authorize", "/login", "/verify")
LIMITED_EXACT = ("/devicelogin", "/admin/signin")


def limited(path: str) -> bool:
    return path.endswith(LIMITED) or path in LIMITED_EXACT or path.endswith("/consent")


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class Lockouts:
    """Failures per key, and a lock once they reach `threshold` (bounded to `max_keys` keys)."""

    def __init__(self, threshold: int, seconds: float, clock: Clock, max_keys: int = MAX_PEERS) -> None:
        self.threshold, self.seconds, self.clock, self.max_keys = threshold, seconds, clock, max_keys
        self._keys: dict[object, _Failures] = {}

    def wait(self, key: object) -> float:
        found = self._keys.get(key)
        return max(0.0, found.locked_until - self.clock()) if found is not None else 0.0

    def failed(self, key: object) -> None:
        now = self.clock()
        found = self._keys.get(key)
        if found is None:
            if len(self._keys) >= self.max_keys:
                del self._keys[next(iter(self._keys))]
            found = self._keys[key] = _Failures()
        if now - found.last > self.seconds:
            found.count = 0  # a failure long ago is forgotten
        found.count, found.last = found.count + 1, now
        if found.count >= self.threshold:
            found.count, found.locked_until = 0, now + self.seconds

    def succeeded(self, key: object) -> None:
        self._keys.pop(key, None)


class SignInGuard:
    """Smart lockout for the sign-in page: per account and per peer."""

    def __init__(self, settings: EmulatorSettings, clock: Clock) -> None:
        self.accounts = Lockouts(settings.lockout_threshold, settings.lockout_seconds, clock)
        self.peers = Lockouts(settings.lockout_peer_threshold, settings.lockout_seconds, clock)

    def refusal(self, user: User | None, peer: str) -> EntraError | None:
        """AADSTS50053 while the account or the peer is locked (checked before the password: the right one
        is refused too, so a lockout can't be used to test guesses)."""
        account = self.accounts.wait(_account(user)) if user is not None else 0.0
        if account:
            return _locked("Your account is locked", account)
        address = self.peers.wait(peer)
        if address:
            return _locked("Sign-in from your address is blocked", address)
        return None

    def failed(self, user: User | None, peer: str) -> None:
        # Unknown accounts count for the peer only: a name nobody has must not take up memory of its own.
        if user is not None:
            self.accounts.failed(_account(user))
        self.peers.failed(peer)

    def succeeded(self, user: User) -> None:
        self.accounts.succeeded(_account(user))


def _locked(what: str, wait: float) -> EntraError:
    return EntraError("invalid_grant", 50053, status=429, locked=what, seconds=retry_after(wait))


def _account(user: User) -> tuple[str, str]:
    return (user.tenant_id, user.object_id)


def throttles(settings: EmulatorSettings, clock: Clock) -> RateLimits:
    """Per peer (the token and sign-in endpoints) and per client application (the token endpoint)."""
    return RateLimits.of(
        peer_rate=settings.rate_peer_per_second,
        peer_burst=settings.rate_peer_burst,
        caller_rate=settings.rate_client_per_second,
        caller_burst=settings.rate_client_burst,
        clock=clock,
    )


def throttled(limits: RateLimits, tenant: str, client_id: str) -> None:
    """429 (AADSTS90055) for a client application over its rate in a tenant."""
    wait = limits.callers.take((tenant.lower(), client_id))
    if wait:
        raise EntraError("temporarily_unavailable", 90055, status=429, seconds=retry_after(wait))
