"""The caller's security groups: from the token's `groups` claim, or from Microsoft Graph on overage.

# zt: configure-tokens-group-claims-app-roles
Entra puts at most 200 group ids in an access token. Beyond that it sends `_claim_names` and
`_claim_sources` instead, the latter holding a URL. That URL is never fetched: in a forged or
replayed token it is whatever an attacker chose (server-side request forgery, or a list of groups
the attacker serves). `Principal` does not even keep it. On overage this tier asks Graph itself:
at the Graph URL of its own configuration, with a token it obtains on the user's behalf (OBO) for
Graph's User.Read, the least privilege Graph documents for POST /me/getMemberObjects.

Results are cached per (tenant id, object id) for a short while: a removal from a group takes
effect within `ttl` seconds, and a user listing shared tasks doesn't cost a Graph call each time.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import httpx

from .onbehalf import OboFailure
from .principal import Principal

log = logging.getLogger("zerotrust.groups")

GRAPH_RESOURCE = "https://graph.microsoft.com"
# Delegated, least privileged for "the signed-in user's own memberships" (Graph's permission table).
GRAPH_SCOPE = f"{GRAPH_RESOURCE}/User.Read"
CACHE_TTL_SECONDS = 300.0
MAX_CACHED_USERS = 10_000
MAX_GROUPS = 11_000  # getMemberObjects' documented ceiling


class OnBehalfTokens(Protocol):
    """What the resolver needs of zerotrust.onbehalf.OnBehalfOf."""

    async def token(self, principal: Principal, assertion: str, scopes: list[str]) -> str: ...


class GroupsUnavailable(Exception):
    """Graph (or the token service) could not say which groups the caller is in."""


@dataclass(frozen=True)
class _Entry:
    groups: frozenset[str]
    expires: float


class GroupResolver:
    def __init__(
        self,
        graph_url: str,
        obo: OnBehalfTokens,
        http: httpx.AsyncClient,
        *,
        scope: str = GRAPH_SCOPE,
        ttl: float = CACHE_TTL_SECONDS,
    ) -> None:
        # Configuration, never a token: https://graph.microsoft.com in Azure, the emulator locally.
        self.endpoint = f"{graph_url.rstrip('/')}/v1.0/me/getMemberObjects"
        self.obo = obo
        self.http = http
        self.scope = scope
        self.ttl = ttl
        self._cache: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self.graph_calls = 0

    async def groups(self, principal: Principal, assertion: str) -> frozenset[str]:
        """Group object ids of the caller. `assertion` is the caller's own token (for OBO)."""
        if not principal.has_group_overage:
            return frozenset(principal.groups)
        key = (principal.tid, principal.oid)
        hit = self._cache.get(key)
        if hit is not None and hit.expires > time.monotonic():
            self._cache.move_to_end(key)
            return hit.groups
        found = await self._from_graph(principal, assertion)
        self._cache[key] = _Entry(found, time.monotonic() + self.ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED_USERS:
            self._cache.popitem(last=False)
        return found

    async def _from_graph(self, principal: Principal, assertion: str) -> frozenset[str]:
        try:
            token = await self.obo.token(principal, assertion, [self.scope])
        except (OboFailure, OSError, ValueError) as exc:
            log.warning("no Graph token on the user's behalf: %s", exc)
            raise GroupsUnavailable from None
        self.graph_calls += 1
        try:
            response = await self.http.post(
                self.endpoint,
                json={"securityEnabledOnly": True},
                headers={"Authorization": f"Bearer {token}"},
            )
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("Graph unreachable for group overage: %r", exc)
            raise GroupsUnavailable from None
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list) or len(values) > MAX_GROUPS or not all(isinstance(v, str) for v in values):
            log.warning("Graph answered %s without a list of group ids", response.status_code)
            raise GroupsUnavailable
        return frozenset(values)
