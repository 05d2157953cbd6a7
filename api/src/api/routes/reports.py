"""GET /reports/tenant: the daemon's tenant report, app-only, counts only.

# zt: developer-strategy-application-permissions
A daemon (client credentials, its managed identity as federated credential, app role
Tasks.Report.All granted by an administrator) asks for per-tenant counts: open and done tasks,
how many people own them. No user is involved, so the api calls downstream-api as itself, with
its own app-only token (Records.Report.All), asked for in the daemon's tenant. No titles, no ids
of people: a report needs neither.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ..dependencies import AsApp, TenantReporter

router = APIRouter(prefix="/reports", tags=["reports"])


class TenantReport(BaseModel):
    tenant_id: str
    open: int
    done: int
    owners: int


@router.get("/tenant", response_model=TenantReport)
async def tenant_report(caller: TenantReporter, down: AsApp) -> TenantReport:
    _, body = await down.call("GET", "/reports/tenant")
    report = TenantReport.model_validate(body)
    # downstream-api answered for its token's tenant, which is the caller's; say so if it ever isn't.
    if report.tenant_id != caller.tid:
        raise RuntimeError("downstream-api reported on another tenant than the caller's")
    return report
