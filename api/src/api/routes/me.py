"""The caller as the api sees it, and as downstream-api sees the same user: identity through the chain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ..dependencies import OnBehalfOfCaller, TasksRead
from ..downstream import DownstreamError

router = APIRouter(tags=["identity"])


# zt: api-calls-api
@router.get("/me")
async def me(user: TasksRead, down: OnBehalfOfCaller) -> dict[str, Any]:
    try:
        _, downstream_view = await down.call("GET", "/me")
    except DownstreamError as exc:
        downstream_view = exc.body()
    return {"api": user.view(), "downstream_api": downstream_view}


class MyGroups(BaseModel):
    groups: list[str]


@router.get("/me/groups", response_model=MyGroups)
async def my_groups(user: TasksRead, down: OnBehalfOfCaller) -> Response:
    """The groups you can share a task with, as downstream-api (which keeps the tasks and decides who may
    see a shared one) resolves them. Object ids only."""
    status, body = await down.call("GET", "/me/groups")
    return JSONResponse(body, status_code=status)
