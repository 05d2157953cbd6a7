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

from cachetools import TTLCache

from .graph import Graph, GraphUnavailable
from .onbehalf import OboError
from .tokens import Principal

log = logging.getLogger(__name__)

CACHE_TTL = 300.0
MAX_CACHED_USERS = 10_000
MAX_GROUPS = 11_000  # getMemberObjects' documented ceiling


class GroupsUnavailable(Exception):
    """Graph (or the token service) could not say which groups the caller is in."""


class GroupResolver:
    def __init__(self, graph: Graph, *, ttl: float = CACHE_TTL) -> None:
        self.graph = graph
        self._cache: TTLCache[tuple[str, str], frozenset[str]] = TTLCache(MAX_CACHED_USERS, ttl)

    @property
    def graph_calls(self) -> int:
        return self.graph.calls

    async def groups(self, principal: Principal, assertion: str) -> frozenset[str]:
        """Group object ids of the caller. `assertion` is the caller's own token (for OBO). An OboError
        carrying claims goes to the caller: the user must sign in again (cae.for_caller)."""
        if not principal.has_group_overage:
            return frozenset(principal.groups)
        key = (principal.tid, principal.oid)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = await self._from_graph(principal, assertion)
        return found

    async def _from_graph(self, principal: Principal, assertion: str) -> frozenset[str]:
        try:
            body = await self.graph.request(
                principal, assertion, "POST", "/me/getMemberObjects", {"securityEnabledOnly": True}
            )
        except OboError as exc:
            if exc.claims is not None:
                raise
            log.warning("no Graph token on the user's behalf: %s", exc)
            raise GroupsUnavailable from None
        except GraphUnavailable:
            raise GroupsUnavailable from None
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list) or len(values) > MAX_GROUPS or not all(isinstance(v, str) for v in values):
            log.warning("Graph answered without a list of group ids")
            raise GroupsUnavailable
        return frozenset(values)
