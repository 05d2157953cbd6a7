"""On-behalf-of: the api's token for downstream-api, carrying the signed-in user (never a relay).

MSAL's `acquire_token_on_behalf_of` never reads its cache, so each user gets a cache of their
own and `acquire_token_silent` is tried first. MSAL is synchronous: calls run in a worker thread,
and the result is reused for the same incoming token and scopes until shortly before it expires,
so a steady-state request neither waits on MSAL nor calls the token endpoint.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msal

from .identity import ConfidentialApps
from .principal import Principal

# Renew this long before expiry so a token never expires between this tier and the next.
REFRESH_MARGIN_SECONDS = 300
MAX_USERS = 10_000
MAX_RESULTS = 50_000


@dataclass(frozen=True)
class OboFailure(Exception):
    error: str
    description: str
    error_codes: tuple[int, ...] = ()
    claims: str | None = None

    def __str__(self) -> str:
        return f"{self.error}: {self.description.splitlines()[0] if self.description else ''}"


class OnBehalfOf:  # zt: api-calls-api, zt: identity-iam-development-best-practices, zt: token-management
    def __init__(self, apps: ConfidentialApps) -> None:
        """`apps`: the service's MSAL apps (its client id and credential); each user's is made at that
        user's own tenant."""
        self._msal = apps
        self._apps: OrderedDict[str, msal.ConfidentialClientApplication] = OrderedDict()
        self._results: dict[tuple[str, tuple[str, ...]], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.token_endpoint_calls = 0

    async def token(self, principal: Principal, assertion: str, scopes: list[str]) -> str:
        key = (hashlib.sha256(assertion.encode()).hexdigest(), tuple(sorted(scopes)))
        hit = self._results.get(key)
        if hit is not None and hit[1] - REFRESH_MARGIN_SECONDS > time.time():
            return hit[0]
        token, expires_at = await anyio.to_thread.run_sync(self._acquire, principal, assertion, scopes)
        if len(self._results) >= MAX_RESULTS:
            now = time.time()
            self._results = {k: v for k, v in self._results.items() if v[1] > now}
        self._results[key] = (token, expires_at)
        return token

    def _app_for(self, principal: Principal) -> msal.ConfidentialClientApplication:
        user_key = principal.user_key
        with self._lock:
            app = self._apps.get(user_key)
            if app is None:
                # zt: identity-supported-account-types - on-behalf-of is asked of the user's own tenant:
                # in multi-tenant mode a Fabrikam user's token is exchanged at Fabrikam's authority.
                app = self._msal.new(principal.tid)
                self._apps[user_key] = app
                if len(self._apps) > MAX_USERS:
                    self._apps.popitem(last=False)
            else:
                self._apps.move_to_end(user_key)
            return app

    def _acquire(self, principal: Principal, assertion: str, scopes: list[str]) -> tuple[str, float]:
        app = self._app_for(principal)
        result: dict[str, Any] | None = None
        accounts = app.get_accounts()
        if accounts:
            result = app.acquire_token_silent(scopes, account=accounts[0])
        if not result or "access_token" not in result:
            self.token_endpoint_calls += 1
            result = app.acquire_token_on_behalf_of(assertion, scopes)
        if "access_token" not in result:
            raise OboFailure(
                str(result.get("error", "unknown")),
                str(result.get("error_description", "")),
                tuple(result.get("error_codes", ())),
                result.get("claims"),
            )
        return str(result["access_token"]), time.time() + float(result.get("expires_in", 0))
