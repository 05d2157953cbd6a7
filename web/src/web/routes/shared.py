"""Tasks shared with the signed-in user's groups (read-only here: only the owner changes a task).

# zt: configure-tokens-group-claims-app-roles
The web app holds no group list and decides nothing: it asks the api, which asks downstream-api,
where membership comes from downstream-api's own token (groups claim) or, on overage, from Graph
on the user's behalf. A person in 211 groups (dave) sees the same page as one in two.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from .. import api_client, groups
from ..api_client import ApiError
from ..dependencies import ApiToken, ClientsDep
from ..pages import page
from .tasks import PageToken

router = APIRouter(tags=["tasks"])


class SharedTask(BaseModel):
    title: str
    done: bool
    shared_with_group: str | None = None
    mine: bool = False


@router.get("/shared")
async def shared_page(request: Request, c: ClientsDep, token: ApiToken, page_token: PageToken = None) -> Response:
    # zt: developer-strategy-authorization-best-practices - what a person may see is decided by
    # the tier that owns the data; this page only shows its answer (a page of it at a time).
    query = api_client.page_query(page_token)
    answer: Any
    answer, following = await api_client.exchange(c.api, "GET", "/tasks/shared", token, params=query)
    try:
        if not isinstance(answer, list):
            raise ValueError("not a list")
        tasks = [SharedTask.model_validate(item) for item in answer]
    except (ValueError, ValidationError):
        raise ApiError(
            502, "The api answered unexpectedly", "The shared tasks were not in the expected shape."
        ) from None
    # Every group here is one of yours, so your groups' names label them.
    names = await groups.group_names(c.api, token) if tasks else {}
    return page(request, "shared.html", tasks=tasks, group_names=names, next_page=following, paged=bool(page_token))
