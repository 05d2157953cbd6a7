"""The caller as this tier validated it (the end of the identity-through-the-chain page), and their groups."""

from __future__ import annotations

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


@router.get("/me/groups")
async def my_groups(principal: RecordsRead, groups: Groups) -> MyGroups:
    """The groups you can share a record with: yours, as this tier resolves them (its token's groups
    claim, or Graph on overage). Object ids only: names would need GroupMember.Read.All, which this
    app does not ask for (User.Read, the least privilege for one's own memberships, returns ids)."""
    # zt: configure-tokens-group-claims-app-roles
    return MyGroups(groups=sorted(await groups.ids()))
