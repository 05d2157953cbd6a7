"""The signed-in user's records: list, create, read, change, delete.

# zt: developer-strategy-authorization-best-practices
Deny by default (every route names the scope it needs), and then object-level authorization: every
query is limited to the caller's own rows, by tenant id AND object id, in the same WHERE clause as
the record id. Someone else's record, a record of the same object id in another tenant, an
unknown id and a malformed id all answer the same 404, so existence is never revealed. Bodies
accept only the fields a caller may set (extra="forbid"): owner, tenant and id can't be assigned.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session
from zerotrust.bodies import documented_body, json_body
from zerotrust.paging import Page, Paging, paged
from zerotrust.tokens import Principal

from ..db import TITLE_MAX, PagedQuery, Record, utc
from ..dependencies import STEP_UP, DatabaseDep, Groups, RecordsRead, RecordsWrite, RecordsWriteSteppedUp, protect
from .checks import OBJECT_ID, RANDOM_ID, checked_id, not_found, printable

router = APIRouter(prefix="/records", tags=["records"])

Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX),
    AfterValidator(printable),
]


class RecordCreate(BaseModel):
    # strict: JSON types as declared (no "true" for true); forbid: no owner/tenant_id/id/done here.
    model_config = ConfigDict(extra="forbid", strict=True)

    title: Title


class RecordPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    title: Title | None = None
    done: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> RecordPatch:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may be left out but not set to null")
        return self


def _group_id(value: str | None) -> str | None:
    if value is not None and not OBJECT_ID.match(value):
        raise ValueError("must be a group's object id (a lowercase GUID)")
    return value


class RecordShare(BaseModel):
    # Only the group: never an owner, a tenant or a list of users (extra="forbid").
    model_config = ConfigDict(extra="forbid", strict=True)

    # null stops sharing; the key itself is required so an empty body can't unshare by accident.
    group_id: Annotated[str | None, AfterValidator(_group_id)]


# Read only after the permission check: the route lists the principal before the body.
NewRecord = Annotated[RecordCreate, Depends(json_body(RecordCreate))]
RecordChanges = Annotated[RecordPatch, Depends(json_body(RecordPatch))]
ShareRequest = Annotated[RecordShare, Depends(json_body(RecordShare))]


class RecordOut(BaseModel):
    id: str
    title: str
    done: bool
    created_at: dt.datetime
    shared_with_group: str | None = None

    @classmethod
    def of(cls, row: Record) -> RecordOut:
        return cls(
            id=row.id,
            title=row.title,
            done=row.done,
            created_at=utc(row.created_at),
            shared_with_group=row.shared_group_id,
        )


class SharedRecordOut(RecordOut):
    # Whether the caller owns it; the owner's object id is not shown to the group.
    mine: bool


@dataclass(frozen=True)
class Owner:
    tenant_id: str
    oid: str

    @classmethod
    def of(cls, principal: Principal) -> Owner:
        # zt: zero-trust-token-customization
        # tid + oid from the validated token; preferred_username/email are for display only.
        return cls(principal.tid, principal.oid)


# -- units of work (run in a worker thread by Database.run) ------------------------------------


# region quote: owned
def _owned(session: Session, owner: Owner, record_id: str) -> Record | None:
    # zt: developer-strategy-authorization-best-practices
    # The ownership check is part of the query, not a comparison after loading someone's row.
    return session.scalars(
        select(Record).where(Record.id == record_id, Record.tenant_id == owner.tenant_id, Record.owner_oid == owner.oid)
    ).one_or_none()


# endregion


# zt: developer-strategy-authorization-best-practices
# The caller's own records: tenant id AND object id in the query, as everywhere here.
_OWN = PagedQuery(
    select(Record).where(Record.tenant_id == bindparam("tenant_id"), Record.owner_oid == bindparam("owner_oid"))
)


def _list(session: Session, owner: Owner, page: Page) -> list[RecordOut]:
    rows = _OWN.rows(session, page, tenant_id=owner.tenant_id, owner_oid=owner.oid)
    return [RecordOut.of(r) for r in rows]


def _create(session: Session, owner: Owner, title: str) -> RecordOut:
    row = Record(
        id=str(uuid.uuid4()),
        tenant_id=owner.tenant_id,
        owner_oid=owner.oid,
        title=title,
        done=False,
        created_at=dt.datetime.now(dt.UTC),
    )
    session.add(row)
    session.flush()
    return RecordOut.of(row)


def _get(session: Session, owner: Owner, record_id: str) -> RecordOut | None:
    row = _owned(session, owner, record_id)
    return RecordOut.of(row) if row else None


def _update(session: Session, owner: Owner, record_id: str, changes: dict[str, Any]) -> RecordOut | None:
    row = _owned(session, owner, record_id)
    if row is None:
        return None
    if "title" in changes:
        row.title = changes["title"]
    if "done" in changes:
        row.done = changes["done"]
    session.flush()
    return RecordOut.of(row)


def _share(session: Session, owner: Owner, record_id: str, group_id: str | None) -> RecordOut | None:
    row = _owned(session, owner, record_id)
    if row is None:
        return None
    row.shared_group_id = group_id
    session.flush()
    return RecordOut.of(row)


_SHARED = PagedQuery(
    select(Record).where(
        Record.tenant_id == bindparam("tenant_id"), Record.shared_group_id.in_(bindparam("group_ids", expanding=True))
    )
)


def _shared_with(session: Session, caller: Owner, groups: frozenset[str], page: Page) -> list[SharedRecordOut]:
    # zt: developer-strategy-authorization-best-practices
    # The caller's tenant AND one of the caller's groups, in the query: a group id of another
    # tenant never matches, whatever the caller claims to belong to.
    if not groups:
        return []
    rows = _SHARED.rows(session, page, tenant_id=caller.tenant_id, group_ids=sorted(groups))
    return [SharedRecordOut(**RecordOut.of(r).model_dump(), mine=r.owner_oid == caller.oid) for r in rows]


def _delete(session: Session, owner: Owner, record_id: str) -> bool:
    result = session.execute(
        delete(Record).where(Record.id == record_id, Record.tenant_id == owner.tenant_id, Record.owner_oid == owner.oid)
    )
    return bool(getattr(result, "rowcount", 0))


def _delete_all(session: Session, owner: Owner) -> None:
    session.execute(delete(Record).where(Record.tenant_id == owner.tenant_id, Record.owner_oid == owner.oid))


# -- routes --------------------------------------------------------------------------------------


@router.get("")
async def list_records(principal: RecordsRead, db: DatabaseDep, page: Paging, response: Response) -> list[RecordOut]:
    """The caller's records, oldest first, a page at a time ($top, $skiptoken; the next page in `Link`)."""
    return paged(response, "/records", page, await db.run(_list, Owner.of(principal), page))


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=documented_body(RecordCreate))
async def create_record(principal: RecordsWrite, body: NewRecord, db: DatabaseDep) -> RecordOut:
    return await db.run(_create, Owner.of(principal), body.title)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def delete_all_records(principal: RecordsWriteSteppedUp, db: DatabaseDep) -> Response:
    """Every record of the caller's: needs authentication context c1 on this tier's own token."""
    await db.run(_delete_all, Owner.of(principal))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/shared")
async def list_shared_records(
    principal: RecordsRead, groups: Groups, db: DatabaseDep, page: Paging, response: Response
) -> list[SharedRecordOut]:
    """Records shared with any group the caller belongs to, in the caller's tenant, a page at a time."""
    found = await db.run(_shared_with, Owner.of(principal), await groups.ids(), page)
    return paged(response, "/records/shared", page, found)


@router.put("/{record_id}/share", openapi_extra=documented_body(RecordShare))
async def share_record(
    record_id: str,
    principal: RecordsWrite,
    groups: Groups,
    body: ShareRequest,
    db: DatabaseDep,
) -> RecordOut:
    """Share one of the caller's records with a group the caller is a member of (null: stop sharing)."""
    checked = checked_id(record_id, RANDOM_ID, "record")
    if body.group_id is not None:
        # zt: secure-with-cae
        protect.require_context(principal, STEP_UP)
    # zt: configure-tokens-group-claims-app-roles - membership decided by this tier, from its own
    # token (groups claim) or from Graph on overage; a group list sent by the caller means nothing.
    if body.group_id is not None and body.group_id not in await groups.ids():
        # A non-owner hears 404 whatever the group, as for an unknown id: existence stays hidden.
        if await db.run(_get, Owner.of(principal), checked) is None:
            raise not_found("record")
        raise HTTPException(status.HTTP_403_FORBIDDEN, "You can share only with a group you are a member of.")
    shared = await db.run(_share, Owner.of(principal), checked, body.group_id)
    if shared is None:
        raise not_found("record")
    return shared


@router.get("/{record_id}")
async def get_record(record_id: str, principal: RecordsRead, db: DatabaseDep) -> RecordOut:
    found = await db.run(_get, Owner.of(principal), checked_id(record_id, RANDOM_ID, "record"))
    if found is None:
        raise not_found("record")
    return found


@router.patch("/{record_id}", openapi_extra=documented_body(RecordPatch))
async def update_record(record_id: str, principal: RecordsWrite, body: RecordChanges, db: DatabaseDep) -> RecordOut:
    changes = body.model_dump(exclude_unset=True)
    changed = await db.run(_update, Owner.of(principal), checked_id(record_id, RANDOM_ID, "record"), changes)
    if changed is None:
        raise not_found("record")
    return changed


@router.delete("/{record_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_record(record_id: str, principal: RecordsWrite, db: DatabaseDep) -> Response:
    if not await db.run(_delete, Owner.of(principal), checked_id(record_id, RANDOM_ID, "record")):
        raise not_found("record")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
