"""The signed-in user's groups as the api gives them: ids, and the names Graph let downstream-api read.

# zt: configure-tokens-group-claims-app-roles
Names are for people to choose from; the ids are what sharing sends and what the tiers check. Where a
group has no name (no administrator consented to downstream-api's GroupMember.Read.All, or Graph was
away), its id stands in.
"""

from __future__ import annotations

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from .api_client import ApiError, call


class Group(BaseModel):
    """One of the signed-in user's groups: its object id, and its name where Graph let the app read it."""

    id: str
    name: str | None = None


class MyGroups(BaseModel):
    model_config = ConfigDict(extra="ignore")

    groups: list[str]
    names: dict[str, str] = {}


async def my_groups(http: aiohttp.ClientSession, token: str) -> list[Group]:
    """Your groups, named ones first by name, then the ids Graph gave no name for."""
    answer = await call(http, "GET", "/me/groups", token)
    try:
        found = MyGroups.model_validate(answer)
    except ValidationError:
        raise ApiError(502, "The api answered unexpectedly", "Your groups were not in the expected shape.") from None
    groups = [Group(id=g, name=found.names.get(g)) for g in found.groups]
    return sorted(groups, key=lambda g: (g.name is None, (g.name or "").casefold(), g.id))


def names_of(groups: list[Group]) -> dict[str, str]:
    return {g.id: g.name for g in groups if g.name}


async def group_names(http: aiohttp.ClientSession, token: str) -> dict[str, str]:
    """The names of your groups, for labels only: {} when they can't be had (the ids stand in)."""
    try:
        return names_of(await my_groups(http, token))
    except ApiError:
        return {}
