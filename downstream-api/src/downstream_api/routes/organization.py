"""Tenant-wide reads: every record of the caller's tenant, and per-owner counts for admins.

The tenant is the validated token's `tid`, in the WHERE clause of every query: there is no
parameter that names a tenant, so another tenant's rows can't be asked for, however the token's
scopes or roles were obtained.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session
from zerotrust.paging import Page, Paging, paged

from ..db import PagedQuery, Record, utc
from ..dependencies import DatabaseDep, Groups, OrgRecordsRead, RecordsAdminSteppedUp

router = APIRouter(tags=["organization"])


class OrgRecordOut(BaseModel):
    id: str
    title: str
    done: bool
    created_at: dt.datetime
    owner: str
    owner_name: str | None = None  # Graph's displayName, a label only (None: Graph didn't say)


class OwnerCount(BaseModel):
    owner: str
    tasks: int
    done: int
    owner_name: str | None = None


class Summary(BaseModel):
    tenant_id: str
    owners: list[OwnerCount]


_TENANT = PagedQuery(select(Record).where(Record.tenant_id == bindparam("tenant_id")))


def _org_records(session: Session, tenant_id: str, page: Page) -> list[OrgRecordOut]:
    # zt: permissions-require-admin-consent - the caller's tenant only, whatever else the token holds.
    # A tenant-wide read comes a page at a time: an organization page, not an export.
    rows = _TENANT.rows(session, page, tenant_id=tenant_id)
    return [
        OrgRecordOut(id=r.id, title=r.title, done=r.done, created_at=utc(r.created_at), owner=r.owner_oid) for r in rows
    ]


def _summary(session: Session, tenant_id: str) -> Summary:
    done = func.sum(case((Record.done.is_(True), 1), else_=0))
    rows = session.execute(
        select(Record.owner_oid, func.count(), done)
        .where(Record.tenant_id == tenant_id)
        .group_by(Record.owner_oid)
        .order_by(Record.owner_oid)
    )
    return Summary(
        tenant_id=tenant_id,
        owners=[OwnerCount(owner=owner, tasks=int(total), done=int(finished or 0)) for owner, total, finished in rows],
    )


@router.get("/org/records")
async def organization_records(
    principal: OrgRecordsRead, db: DatabaseDep, page: Paging, response: Response, graph: Groups
) -> list[OrgRecordOut]:
    records = await db.run(_org_records, principal.tid, page)
    # Who owns each, by name where Graph says (User.ReadBasic.All, on the caller's behalf); the id stays.
    names = await graph.people([r.owner for r in records])
    return paged(
        response, "/org/records", page, [r.model_copy(update={"owner_name": names.get(r.owner)}) for r in records]
    )


# zt: configure-tokens-group-claims-app-roles
@router.get("/admin/records/summary")
async def records_summary(principal: RecordsAdminSteppedUp, db: DatabaseDep, graph: Groups) -> Summary:
    summary = await db.run(_summary, principal.tid)
    names = await graph.people([o.owner for o in summary.owners])
    summary.owners = [o.model_copy(update={"owner_name": names.get(o.owner)}) for o in summary.owners]
    return summary
