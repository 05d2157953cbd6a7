"""Everyone's tasks in the caller's organization: a delegated permission that needs admin consent.

# zt: permissions-require-admin-consent
`Tasks.Read.All` is marked admin_consent_required in infra/registrations.yaml: no user can grant it
to the web app for themselves, only a tenant administrator, for everyone in the tenant. The api
asks downstream-api on the user's behalf for `Records.Read.All`, also admin-only (granted along
with the web's consent: the web app is a known client of the api, combined consent). The tenant is
the token's `tid`, never a parameter: an organization view of another tenant can't be asked for.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel
from zerotrust.paging import Paging

from ..dependencies import OnBehalfOfCaller, OrgTasksRead
from .tasks import page_answer

router = APIRouter(prefix="/org", tags=["organization"])


class OrgTask(BaseModel):
    id: str
    title: str
    done: bool
    created_at: str
    owner: str  # the owner's object id; names come from the directory, never from stored data
    owner_name: str | None = None  # from the directory (Graph, read by downstream-api): a label, may be absent


# region quote: org-tasks
@router.get("/tasks", response_model=list[OrgTask])
async def organization_tasks(user: OrgTasksRead, down: OnBehalfOfCaller, page: Paging) -> Response:
    """Everyone's tasks in your organization, a page at a time (`$top`, `$skiptoken`, the `Link` header)."""
    found = await down.page("GET", "/org/records", page, scope_value="Records.Read.All")
    return page_answer("/org/tasks", page, *found)


# endregion
