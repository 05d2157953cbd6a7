"""The caller as this tier validated it (the end of the identity-through-the-chain page), and their groups."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

from ..dependencies import DatabaseDep, Groups, RecordsRead

router = APIRouter(tags=["identity"])

# Asked of the server, not read from configuration: the role the server authenticated, and whether it could
# step around row-level security (the service's role must not).
_WHO_AM_I = text(
    "SELECT current_user, current_database(), rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
)


@router.get("/me")
async def me(principal: RecordsRead, db: DatabaseDep) -> dict[str, Any]:
    # The same user the web app signed in, seen through an on-behalf-of token: tenant and object id
    # unchanged, a different pairwise subject, the api as the calling app, Records.* scopes. And the last
    # hop, which is this service's own identity, not the user's: who it is to the database.
    return {**principal.view(), "database": await db.run(_database_hop, db.db.connecting_identity)}


# zt: identity-non-user-applications
def _database_hop(session: Session, connecting_identity: str | None) -> dict[str, Any]:
    """Who this service is to the database. Names only: never a token, a password or the URL."""
    system = session.get_bind().dialect.name
    if system != "postgresql":
        return {
            "system": system,
            "role": None,
            "identity": None,
            "credential": "access to the database file (owner-only); SQLite has no database identity or role",
        }
    role, database, superuser, bypasses_rls = session.execute(_WHO_AM_I).one()
    credential = (
        "an Entra token of the managed identity as the password of each new connection (never stored)"
        if connecting_identity
        else "the operating system (a local socket), no token"
    )
    return {
        "system": system,
        "role": role,
        "database": database,
        "identity": _identity(connecting_identity),
        "credential": credential,
        "superuser": bool(superuser),
        "bypasses_row_level_security": bool(bypasses_rls),
    }


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


def _identity(connecting_identity: str | None) -> str | None:
    if connecting_identity == "system-assigned":
        return "the service's system-assigned managed identity"
    return f"managed identity (client id {connecting_identity})" if connecting_identity else None
