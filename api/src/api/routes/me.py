"""The caller as the api sees it, and as downstream-api sees the same user: identity through the chain."""

from __future__ import annotations

import asyncio
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
    """The caller as this api, downstream-api and Microsoft Graph see them (Graph: their profile)."""
    downstream, graph = await asyncio.gather(down.call("GET", "/me"), down.graph("GET", "/me"), return_exceptions=True)
    for answer in (downstream, graph):
        # zt: secure-with-cae
        # A sign-in that is no longer good (Graph's claims challenge among them) is the caller's to hear.
        if isinstance(answer, DownstreamError) and answer.status == 401:
            raise answer
        if isinstance(answer, BaseException) and not isinstance(answer, DownstreamError):
            raise answer
    return {
        "api": user.view(),
        "downstream_api": downstream.body() if isinstance(downstream, DownstreamError) else downstream[1],
        "graph": graph.body() if isinstance(graph, DownstreamError) else _profile(graph, user.oid),
    }


def _profile(found: Any, oid: str) -> dict[str, Any]:
    # Graph's answer is for the user this token is for, or it is not shown at all.
    if not isinstance(found, dict) or found.get("id") != oid:
        return {"error": "bad_gateway", "error_description": "Graph answered for someone else."}
    return {k: found.get(k) for k in ("id", "displayName", "userPrincipalName")}


class MyGroups(BaseModel):
    groups: list[str]
    # id -> display name, where downstream-api could read it from Graph (GroupMember.Read.All).
    names: dict[str, str] = {}


@router.get("/me/groups", response_model=MyGroups)
async def my_groups(user: TasksRead, down: OnBehalfOfCaller) -> Response:
    """The groups you can share a task with, as downstream-api (which keeps the tasks and decides who may
    see a shared one) resolves them, with the names it could read from Graph (ids are what counts)."""
    status, body = await down.call("GET", "/me/groups")
    return JSONResponse(body, status_code=status)
