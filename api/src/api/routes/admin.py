"""Admin views: for users an administrator assigned the Tasks.Admin app role, through an app that
holds a read scope for them.

# zt: configure-tokens-group-claims-app-roles
The role arrives in the delegated token's `roles` claim, put there by Entra from the assignment
(infra/registrations.yaml declares it, identity-emulator/demo/directory.yaml assigns it to bob).
downstream-api checks its own role (`Records.Admin`) on its own token: each tier decides for
itself, so a bug in the api's check does not open downstream-api.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ..dependencies import STEP_UP, OnBehalfOfCaller, TasksAdminSteppedUp

router = APIRouter(prefix="/admin", tags=["admin"])


class OwnerCount(BaseModel):
    owner: str  # object id
    owner_name: str | None = None  # from the directory (Graph, read by downstream-api): a label, may be absent
    tasks: int
    done: int


class Summary(BaseModel):
    tenant_id: str
    owners: list[OwnerCount]


@router.get("/tasks/summary", response_model=Summary)
async def tasks_summary(user: TasksAdminSteppedUp, down: OnBehalfOfCaller) -> Response:
    """Tasks per owner in your organization. Sensitive: needs authentication context c1 (a second factor)."""
    status, body = await down.call("GET", "/admin/records/summary", context=STEP_UP)
    return JSONResponse(body, status_code=status)
