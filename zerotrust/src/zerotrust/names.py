"""Display names of other people in the caller's tenant, from Microsoft Graph, for labels only.

# zt: configure-tokens-group-claims-app-roles
Records are kept by object id (never by a name, which changes); a person reading the organization's list
would rather see who. Graph gives a user's id and displayName to a token for User.ReadBasic.All, the
least privileged permission that reads other users' basic profiles, on the signed-in user's behalf
(`GET /users?$filter=id in (...)`, at most 15 ids a request, as Graph allows). Names are never used to
decide anything; when Graph can't give them (no consent, Graph away) the ids stand in. Cached per
(tenant id, object id) for a short while, as group memberships are.
"""

from __future__ import annotations

from collections.abc import Iterable

from cachetools import TTLCache

from .graph import GRAPH_RESOURCE, Graph
from .ids import OBJECT_ID
from .tokens import Principal

USER_NAMES_SCOPE = f"{GRAPH_RESOURCE}/User.ReadBasic.All"
BATCH = 15  # Graph's limit on the values of one `in` filter
MAX_ASKED = 300  # per call: a page of records names at most this many owners
CACHE_TTL = 300.0
MAX_CACHED = 10_000
MAX_NAME = 256


class UserNames:
    def __init__(self, graph: Graph, *, ttl: float = CACHE_TTL) -> None:
        self.graph = graph
        self._cache: TTLCache[tuple[str, str], str] = TTLCache(MAX_CACHED, ttl)

    async def names(self, principal: Principal, assertion: str, object_ids: Iterable[str]) -> dict[str, str]:
        """id -> display name for those of `object_ids` Graph names (the caller's tenant only); an
        OboError carrying claims goes to the caller (a fresh sign-in is needed), anything else gives {}."""
        wanted = [o for o in dict.fromkeys(object_ids) if OBJECT_ID.fullmatch(o)][:MAX_ASKED]
        found = {o: name for o in wanted if (name := self._cache.get((principal.tid, o))) is not None}
        missing = [o for o in wanted if o not in found]
        for start in range(0, len(missing), BATCH):
            batch = missing[start : start + BATCH]
            got = await self._ask(principal, assertion, batch)
            if got is None:
                break
            for oid, name in got.items():
                self._cache[(principal.tid, oid)] = found[oid] = name
        return found

    async def _ask(self, principal: Principal, assertion: str, ids: list[str]) -> dict[str, str] | None:
        listed = ",".join(f"'{i}'" for i in ids)
        path = f"/users?$filter=id in ({listed})&$select=id,displayName"
        body = await self.graph.courtesy(principal, assertion, path, scope=USER_NAMES_SCOPE)
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list):
            return None
        asked = set(ids)
        return {
            str(v["id"]): str(v["displayName"]).strip()[:MAX_NAME]
            for v in values
            if isinstance(v, dict) and v.get("id") in asked and isinstance(v.get("displayName"), str)
        }
