"""/users: the provisioned users of the caller's tenant, kept for the api's SCIM endpoint.

# zt: identity-standards-based-development-methodologies
The data tier owns the data, so the users the provisioning service declares are stored here,
reached by the api app-only (role Users.Manage) from its SCIM routes. Every query is limited to
the token's tenant (`tid`); a user is keyed on that tenant + their Entra object id. What happens
to a user's data:
- deactivated (`active: false`): everything is kept; every delegated request made for them is
  refused with 403 account_deactivated (dependencies.active), until they are reactivated;
- deleted: their records are deleted with them, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from zerotrust.bodies import documented_body, json_body

from ..db import DISPLAY_NAME_MAX, USER_NAME_MAX, ProvisionedUser, Record, utc
from ..dependencies import DatabaseDep, UsersManager
from .checks import OBJECT_ID, checked_id, not_found, printable

router = APIRouter(prefix="/users", tags=["provisioning"])


UserName = Annotated[str, StringConstraints(min_length=1, max_length=USER_NAME_MAX), AfterValidator(printable)]
DisplayName = Annotated[str, StringConstraints(max_length=DISPLAY_NAME_MAX), AfterValidator(printable)]
ObjectId = Annotated[str, StringConstraints(pattern=OBJECT_ID.pattern)]


class UserCreate(BaseModel):
    # The tenant is the token's; id and timestamps are the server's: none of them can be sent.
    model_config = ConfigDict(extra="forbid", strict=True)

    object_id: ObjectId
    user_name: UserName
    display_name: DisplayName | None = None
    active: bool = True


class UserChange(BaseModel):
    # The object id is the key and never changes; the tenant is never the caller's to set.
    model_config = ConfigDict(extra="forbid", strict=True)

    user_name: UserName | None = None
    display_name: DisplayName | None = None
    active: bool | None = None


class UserOut(BaseModel):
    id: str
    object_id: str
    user_name: str
    display_name: str | None
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: ProvisionedUser) -> UserOut:
        return cls(
            id=row.id,
            object_id=row.object_id,
            user_name=row.user_name,
            display_name=row.display_name,
            active=row.active,
            created_at=utc(row.created_at),
            updated_at=utc(row.updated_at),
        )


NewUser = Annotated[UserCreate, Depends(json_body(UserCreate))]
UserChanges = Annotated[UserChange, Depends(json_body(UserChange))]


def _in_tenant(session: Session, tenant_id: str, user_id: str) -> ProvisionedUser | None:
    return session.scalars(
        select(ProvisionedUser).where(ProvisionedUser.id == user_id, ProvisionedUser.tenant_id == tenant_id)
    ).one_or_none()


def _create(session: Session, tenant_id: str, body: UserCreate) -> UserOut | None:
    exists = session.scalar(
        select(ProvisionedUser.id).where(
            ProvisionedUser.tenant_id == tenant_id, ProvisionedUser.object_id == body.object_id
        )
    )
    if exists is not None:
        return None
    now = dt.datetime.now(dt.UTC)
    row = ProvisionedUser(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        object_id=body.object_id,
        user_name=body.user_name,
        display_name=body.display_name,
        active=body.active,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return UserOut.of(row)


class UserPage(BaseModel):
    total: int  # every match, of which `users` is the page asked for
    users: list[UserOut]


# A listing is never unbounded: a tenant's whole directory in one answer would be a denial of service.
MAX_PAGE = 100


def _find(
    session: Session, tenant_id: str, user_name: str | None, object_id: str | None, offset: int, limit: int
) -> UserPage:
    query = select(ProvisionedUser).where(ProvisionedUser.tenant_id == tenant_id)
    if user_name is not None:
        query = query.where(ProvisionedUser.user_name == user_name)
    if object_id is not None:
        query = query.where(ProvisionedUser.object_id == object_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    # A stable order, so consecutive pages neither repeat nor skip a user.
    page = query.order_by(ProvisionedUser.created_at, ProvisionedUser.id).offset(offset).limit(limit)
    return UserPage(total=total, users=[UserOut.of(r) for r in session.scalars(page)])


def _get(session: Session, tenant_id: str, user_id: str) -> UserOut | None:
    row = _in_tenant(session, tenant_id, user_id)
    return UserOut.of(row) if row else None


def _change(session: Session, tenant_id: str, user_id: str, changes: dict[str, Any]) -> UserOut | None:
    row = _in_tenant(session, tenant_id, user_id)
    if row is None:
        return None
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    return UserOut.of(row)


def _delete(session: Session, tenant_id: str, user_id: str) -> bool:
    row = _in_tenant(session, tenant_id, user_id)
    if row is None:
        return False
    # Deleted means gone: their records go with them (the same transaction), as the chapter says.
    session.execute(delete(Record).where(Record.tenant_id == tenant_id, Record.owner_oid == row.object_id))
    session.delete(row)
    return True


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=documented_body(UserCreate))
async def create_user(principal: UsersManager, body: NewUser, db: DatabaseDep) -> UserOut:
    created = await db.run(_create, principal.tid, body)
    if created is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "This user is already provisioned in this tenant.")
    return created


@router.get("")
async def find_users(
    principal: UsersManager,
    db: DatabaseDep,
    user_name: Annotated[str | None, Query(min_length=1, max_length=USER_NAME_MAX)] = None,
    object_id: Annotated[str | None, Query(pattern=OBJECT_ID.pattern)] = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=0, le=MAX_PAGE)] = MAX_PAGE,
) -> UserPage:
    """The tenant's provisioned users, `limit` (at most 100) from `offset`, and how many match in all."""
    return await db.run(_find, principal.tid, user_name, object_id, offset, limit)


@router.get("/{user_id}")
async def get_user(user_id: str, principal: UsersManager, db: DatabaseDep) -> UserOut:
    found = await db.run(_get, principal.tid, checked_id(user_id, OBJECT_ID, "user"))
    if found is None:
        raise not_found("user")
    return found


@router.patch("/{user_id}", openapi_extra=documented_body(UserChange))
async def change_user(user_id: str, principal: UsersManager, body: UserChanges, db: DatabaseDep) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("user_name", "") is None or ("active" in changes and changes["active"] is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "user_name and active may be left out, not null.")
    changed = await db.run(_change, principal.tid, checked_id(user_id, OBJECT_ID, "user"), changes)
    if changed is None:
        raise not_found("user")
    return changed


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: str, principal: UsersManager, db: DatabaseDep) -> Response:
    if not await db.run(_delete, principal.tid, checked_id(user_id, OBJECT_ID, "user")):
        raise not_found("user")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
