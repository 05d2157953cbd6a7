"""The caller's groups as this tier resolves them (zerotrust.groups), for routes that need them.

# zt: configure-tokens-group-claims-app-roles
downstream-api owns the records, so it decides who may see a shared one: its own access token
carries the groups claim (its registration asks for SecurityGroup), and on overage it calls Graph
on the user's behalf with its own managed identity. The api forwards no group list to trust.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from zerotrust.groups import GroupResolver, GroupsUnavailable
from zerotrust.principal import Principal


class Groups:
    def __init__(self, resolver: GroupResolver) -> None:
        self.resolver = resolver

    async def of(self, principal: Principal, token: str) -> frozenset[str]:
        try:
            return await self.resolver.groups(principal, token)
        except GroupsUnavailable:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "Your group memberships can't be read right now; try again shortly.",
                headers={"Retry-After": "5"},
            ) from None


def caller_groups(request: Request) -> Groups:
    groups: Groups = request.app.state.groups
    return groups


CallerGroups = Annotated[Groups, Depends(caller_groups)]
