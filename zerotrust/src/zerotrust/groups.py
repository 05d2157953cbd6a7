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
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from cachetools import TTLCache

from .onbehalf import OboError
from .tokens import Principal

log = logging.getLogger(__name__)

GRAPH_RESOURCE = "https://graph.microsoft.com"
# Delegated, least privileged for "the signed-in user's own memberships" (Graph's permission table).
GRAPH_SCOPE = f"{GRAPH_RESOURCE}/User.Read"
CACHE_TTL = 300.0
MAX_CACHED_USERS = 10_000
MAX_GROUPS = 11_000  # getMemberObjects' documented ceiling

# POST a JSON body with headers; answers (status, parsed JSON or None).
Post = Callable[[str, dict[str, Any], dict[str, str]], Awaitable[tuple[int, Any]]]


def post_json(session: aiohttp.ClientSession) -> Post:
    async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        async with session.post(url, json=body, headers=headers) as response:
            return response.status, await response.json(content_type=None) if response.status == 200 else None

    return post


class OnBehalfTokens(Protocol):
    """What the resolver needs of zerotrust.onbehalf.OnBehalfOf."""

    async def token(self, user: Principal, assertion: str, scopes: list[str]) -> str: ...


class GroupsUnavailable(Exception):
    """Graph (or the token service) could not say which groups the caller is in."""


class GroupResolver:
    def __init__(
        self,
        graph_url: str,
        obo: OnBehalfTokens,
        post: Post,
        *,
        scope: str = GRAPH_SCOPE,
        ttl: float = CACHE_TTL,
    ) -> None:
        # Configuration, never a token: https://graph.microsoft.com in Azure, the emulator locally.
        self.endpoint = f"{graph_url.rstrip('/')}/v1.0/me/getMemberObjects"
        self.obo = obo
        self.post = post
        self.scope = scope
        self._cache: TTLCache[tuple[str, str], frozenset[str]] = TTLCache(MAX_CACHED_USERS, ttl)
        self.graph_calls = 0

    async def groups(self, principal: Principal, assertion: str) -> frozenset[str]:
        """Group object ids of the caller. `assertion` is the caller's own token (for OBO)."""
        if not principal.has_group_overage:
            return frozenset(principal.groups)
        key = (principal.tid, principal.oid)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = await self._from_graph(principal, assertion)
        return found

    async def _from_graph(self, principal: Principal, assertion: str) -> frozenset[str]:
        try:
            token = await self.obo.token(principal, assertion, [self.scope])
        except OboError as exc:
            log.warning("no Graph token on the user's behalf: %s", exc)
            raise GroupsUnavailable from None
        self.graph_calls += 1
        try:
            status, body = await self.post(
                self.endpoint, {"securityEnabledOnly": True}, {"Authorization": f"Bearer {token}"}
            )
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            log.warning("Graph unreachable for group overage: %r", exc)
            raise GroupsUnavailable from None
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list) or len(values) > MAX_GROUPS or not all(isinstance(v, str) for v in values):
            log.warning("Graph answered %s without a list of group ids", status)
            raise GroupsUnavailable
        return frozenset(values)
