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

The groups' names are for people, never for a decision: a separate call (`names`), with a token for
GroupMember.Read.All, the least privilege that reads a group's displayName; an administrator consents to
it. Without that consent (or with Graph away) there are no names, and the pages show the ids.
"""

from __future__ import annotations

import logging

from cachetools import TTLCache

from .graph import GROUP_NAMES_SCOPE, Graph, GraphUnavailable
from .onbehalf import OboError
from .tokens import Principal

log = logging.getLogger(__name__)

CACHE_TTL = 300.0
MAX_CACHED_USERS = 10_000
MAX_GROUPS = 11_000  # getMemberObjects' documented ceiling
MAX_NAME = 256  # Graph's limit on a group's displayName
# Names only, as many a page as Graph gives (999); ids and names are all the page needs.
GROUP_NAMES_PATH = "/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=999"


class GroupsUnavailable(Exception):
    """Graph (or the token service) could not say which groups the caller is in."""


class GroupResolver:
    def __init__(self, graph: Graph, *, ttl: float = CACHE_TTL) -> None:
        self.graph = graph
        self._cache: TTLCache[tuple[str, str], frozenset[str]] = TTLCache(MAX_CACHED_USERS, ttl)
        self._names: TTLCache[tuple[str, str], dict[str, str]] = TTLCache(MAX_CACHED_USERS, ttl)

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

    async def names(self, principal: Principal, assertion: str) -> dict[str, str]:
        """The display names of the caller's groups, by id; {} when they can't be read (no administrator
        consented to GroupMember.Read.All, Graph away): names are a courtesy, ids still work. An OboError
        carrying claims goes to the caller, as for `groups`."""
        # zt: configure-tokens-group-claims-app-roles
        key = (principal.tid, principal.oid)
        found = self._names.get(key)
        if found is None:
            found = await self._names_from_graph(principal, assertion)
            if found:  # none yet may mean no consent yet: asked again, so a grant shows at once
                self._names[key] = found
        return found

    async def _names_from_graph(self, principal: Principal, assertion: str) -> dict[str, str]:
        names: dict[str, str] = {}
        page: str | None = GROUP_NAMES_PATH
        while page is not None and len(names) <= MAX_GROUPS:
            body = await self.graph.courtesy(principal, assertion, page, scope=GROUP_NAMES_SCOPE)
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                return {}
            for group in body["value"]:
                gid, name = (group.get("id"), group.get("displayName")) if isinstance(group, dict) else (None, None)
                if isinstance(gid, str) and isinstance(name, str) and name.strip():
                    names[gid] = name.strip()[:MAX_NAME]
            link = body.get("@odata.nextLink")
            page = link if isinstance(link, str) else None
        return names
