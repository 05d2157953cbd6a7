"""GET /reports/tenant: counts for the daemon's tenant report, app-only, for the api alone.

# zt: developer-strategy-application-permissions
The only route here that serves a whole tenant, so the only one that takes an app-only token
(the api's own, role Records.Report.All) and refuses every user's. Counts only: no title, no
owner id leaves this route. The tenant is the token's `tid`, never a parameter: the api asks for
its token in the daemon's tenant, so another tenant's rows can't be asked for.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import Record
from ..dependencies import DatabaseDep, TenantReporter

router = APIRouter(prefix="/reports", tags=["reports"])


class TenantReport(BaseModel):
    tenant_id: str
    open: int
    done: int
    owners: int


def _report(session: Session, tenant_id: str) -> TenantReport:
    rows = session.execute(
        select(Record.done, func.count()).where(Record.tenant_id == tenant_id).group_by(Record.done)
    ).all()
    counts = {bool(done): int(n) for done, n in rows}
    owners = session.scalar(select(func.count(func.distinct(Record.owner_oid))).where(Record.tenant_id == tenant_id))
    return TenantReport(tenant_id=tenant_id, open=counts.get(False, 0), done=counts.get(True, 0), owners=owners or 0)


@router.get("/tenant")
async def tenant_report(principal: TenantReporter, db: DatabaseDep) -> TenantReport:
    return await db.run(_report, principal.tid)
