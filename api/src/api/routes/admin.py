"""Admin views: for users an administrator assigned the Tasks.Admin app role, through an app that
holds a read scope for them.

# zt: configure-tokens-group-claims-app-roles
The role arrives in the delegated token's `roles` claim, put there by Entra from the assignment
(infra/registrations.yaml declares it, identity-emulator/demo/directory.yaml assigns it to bob).
downstream-api checks its own role (`Records.Admin`) on its own token: each tier decides for
itself, so a bug in the api's check does not open downstream-api.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from zerotrust.correlation import correlation_id

from ..auth import IncomingToken, TasksAdmin
from ..downstream import Downstream, Hop

router = APIRouter(prefix="/admin", tags=["admin"])


class OwnerCount(BaseModel):
    owner: str  # object id
    tasks: int
    done: int


class Summary(BaseModel):
    tenant_id: str
    owners: list[OwnerCount]


def admin_downstream(request: Request, user: TasksAdmin, token: IncomingToken) -> Hop:
    client: Downstream = request.app.state.downstream
    return client.on_behalf_of(user, token, correlation_id(request))


AdminDownstream = Annotated[Hop, Depends(admin_downstream)]


@router.get("/tasks/summary", response_model=Summary)
async def tasks_summary(down: AdminDownstream) -> Response:
    status, body = await down.call("GET", "/admin/records/summary")
    return JSONResponse(body, status_code=status)
