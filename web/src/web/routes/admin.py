"""The admin view: per-owner task counts of the organization, for holders of the Tasks.Admin app role.

# zt: configure-tokens-group-claims-app-roles
The web app does not decide who is an admin: it sends its usual read token, and the api decides
on the token's `roles` claim (then downstream-api on its own token's). A 403 from the api is shown
as what it means here: the role is missing, and only an administrator can assign it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import api_client
from ..dependencies import ApiToken, ClientsDep
from ..pages import page

router = APIRouter(tags=["admin"])

ADMIN_ROLE = "Tasks.Admin"


@router.get("/admin")
async def admin(request: Request, c: ClientsDep, token: ApiToken) -> Response:
    try:
        summary = await api_client.admin_summary(c.api, token)
    except api_client.ApiError as err:
        if err.status != 403:
            raise
        return page(request, "admin_forbidden.html", 403, role=ADMIN_ROLE)
    return page(request, "admin.html", summary=summary)
