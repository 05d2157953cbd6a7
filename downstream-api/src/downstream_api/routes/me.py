"""The caller as this tier validated it (the end of the identity-through-the-chain page), and their groups."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from ..dependencies import Groups, RecordsRead

router = APIRouter(tags=["identity"])


@router.get("/me")
async def me(principal: RecordsRead) -> dict[str, Any]:
    # The same user the web app signed in, seen through an on-behalf-of token: tenant and object id
    # unchanged, a different pairwise subject, the api as the calling app, Records.* scopes.
    return principal.view()


class MyGroups(BaseModel):
    groups: list[str]
    # id -> display name, for the groups Graph let this tier name (GroupMember.Read.All); the others have none.
    names: dict[str, str] = {}


@router.get("/me/groups")
async def my_groups(principal: RecordsRead, groups: Groups) -> MyGroups:
    """The groups you can share a record with: yours, as this tier resolves them (its token's groups
    claim, or Graph on overage), with their names where an administrator let this tier read them
    (Graph's GroupMember.Read.All; User.Read, the least privilege for one's own memberships, gives ids)."""
    # zt: configure-tokens-group-claims-app-roles
    ids, names = await asyncio.gather(groups.ids(), groups.names())
    return MyGroups(groups=sorted(ids), names={gid: name for gid, name in names.items() if gid in ids})
