"""On-behalf-of: a token for the next API carrying the signed-in user (the incoming token is never relayed).

MSAL's `acquire_token_on_behalf_of` never reads its cache, so each user gets an app and a cache of their
own and `acquire_token_silent` is tried first. MSAL is synchronous: calls run in a worker thread, and the
result is reused for the same incoming token and scopes until shortly before it expires, so a
steady-state request neither waits on MSAL nor calls the token endpoint. A refusal becomes an `OboError`
that says what the caller should be told (status, OAuth error, description) and, when the token service
asks for a fresh sign-in, the claims to ask it with (cae.py says who may be told them).
"""

# region liftable: on-behalf-of (1 of 2) requires: msal, azure-identity, cryptography, cachetools, anyio
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import anyio.to_thread
import msal
import msal.exceptions
from cachetools import LRUCache, TLRUCache

from .credentials import ConfidentialApps

# Renew this long before expiry so a token never expires between this tier and the next.
REFRESH_MARGIN_SECONDS = 300
MAX_USERS = 10_000
MAX_RESULTS = 50_000
# AADSTS65001 (no consent) and AADSTS90094 (admin approval needed): the grant is missing for this app.
CONSENT_MISSING = frozenset({65001, 90094})


class User(Protocol):
    """Who the incoming token is for (a validated Principal is one)."""

    @property
    def tid(self) -> str: ...
    @property
    def user_key(self) -> str: ...


@dataclass(frozen=True)
class OboError(Exception):
    """The exchange failed; `status`, `error` and `description` are what this tier's caller should hear."""

    status: int
    error: str
    description: str
    token_service_error: str = ""
    error_codes: tuple[int, ...] = ()
    claims: str | None = None

    def __str__(self) -> str:
        return f"{self.token_service_error or self.error}: {self.description}"

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> OboError:
        error, codes = str(result.get("error", "unknown")), tuple(result.get("error_codes") or ())
        found = (error, codes, result.get("claims"))
        if CONSENT_MISSING & set(codes):
            # zt: permissions-require-admin-consent
            # This app lacks the grant on the next API: nothing the user can fix by signing in again.
            return cls(403, "consent_required", "An administrator has not granted this permission.", *found)
        if error in ("invalid_grant", "interaction_required"):
            return cls(401, "invalid_token", "Your sign-in is no longer valid; sign in again.", *found)
        return cls(503, "temporarily_unavailable", "The token service refused or failed.", *found)


def unreachable() -> OboError:
    return OboError(503, "temporarily_unavailable", "The token service can't be reached.")


# zt: api-calls-api
# zt: token-management
class OnBehalfOf:
    def __init__(self, apps: ConfidentialApps) -> None:
        """`apps`: this service's MSAL apps (its client id and credential); each user's is at their tenant."""
        self._msal = apps
        # One MSAL app (and token cache) per user and incoming token: what was got on behalf of an earlier sign-in
        # is never handed on for a later one (a revoked session's tokens would outlive its revocation downstream).
        self._apps: LRUCache[tuple[str, str], msal.ConfidentialClientApplication] = LRUCache(MAX_USERS)
        self._results: TLRUCache[tuple[str, str, tuple[str, ...]], tuple[str, float]] = TLRUCache(
            MAX_RESULTS, lambda _key, value, _now: value[1] - REFRESH_MARGIN_SECONDS, timer=time.time
        )
        self._lock = threading.Lock()
        self.token_endpoint_calls = 0

    async def token(self, user: User, assertion: str, scopes: list[str], *, claims: str | None = None) -> str:
        """A token for `scopes` on behalf of `user`, whose own token is `assertion`; or OboError. `claims`: a
        resource's claims challenge, passed to the token service (nothing cached is used then)."""
        lineage = hashlib.sha256(assertion.encode()).hexdigest()
        key = (user.user_key, lineage, tuple(sorted(scopes)))
        hit = self._results.get(key) if claims is None else None
        if hit is not None:
            return hit[0]
        try:
            found = await anyio.to_thread.run_sync(self._acquire, user, lineage, assertion, scopes, claims)
        except (OSError, ValueError):  # MSAL raises these when the provider can't be reached
            raise unreachable() from None
        except msal.exceptions.MsalServiceError:  # the token service answered with a server error (5xx)
            raise OboError(503, "temporarily_unavailable", "The token service refused or failed.") from None
        self._results[key] = found
        return found[0]

    # zt: secure-with-cae
    def forget(self, user: User) -> None:
        """Drop every token held for `user` (after a claims challenge: none of them may be used again)."""
        with self._lock:
            for app_key in [k for k in list(self._apps.keys()) if k[0] == user.user_key]:
                self._apps.pop(app_key, None)
            for key in [k for k in list(self._results.keys()) if k[0] == user.user_key]:
                self._results.pop(key, None)

    def _app_for(self, user: User, lineage: str) -> msal.ConfidentialClientApplication:
        with self._lock:
            app = self._apps.get((user.user_key, lineage))
            if app is None:
                # zt: identity-supported-account-types
                # Asked of the user's own tenant: a Fabrikam user's token is exchanged at Fabrikam's authority.
                app = self._apps[(user.user_key, lineage)] = self._msal.new(user.tid)
            return app

    def _acquire(
        self, user: User, lineage: str, assertion: str, scopes: list[str], claims: str | None
    ) -> tuple[str, float]:
        # region quote: obo-exchange
        app = self._app_for(user, lineage)
        result: dict[str, Any] | None = None
        accounts = app.get_accounts() if claims is None else []
        if accounts:
            result = app.acquire_token_silent(scopes, account=accounts[0])
        if not result or "access_token" not in result:
            self.token_endpoint_calls += 1
            result = app.acquire_token_on_behalf_of(assertion, scopes, claims_challenge=claims)
        if "access_token" not in result:
            raise OboError.from_result(result)
        # endregion
        return str(result["access_token"]), time.time() + float(result.get("expires_in", 0))


# endregion liftable: on-behalf-of (1 of 2)
