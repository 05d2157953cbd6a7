"""The signed-in user's tasks: kept by downstream-api as records, reached on the user's behalf."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from zerotrust.bodies import documented_body, json_body
from zerotrust.correlation import correlation_id
from zerotrust.ids import OBJECT_ID

from ..auth import IncomingToken, Reader, Writer
from ..downstream import Downstream, Hop

router = APIRouter(prefix="/tasks", tags=["tasks"])

TaskId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


class TaskIn(BaseModel):
    # Owner, tenant and id come from the token and the server, never from the body (mass assignment).
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)


class TaskPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, min_length=1, max_length=200)
    done: bool | None = None


class TaskShare(BaseModel):
    # zt: configure-tokens-group-claims-app-roles - the group to share with (null: stop sharing).
    # Whether the caller is a member is decided downstream, where the record lives, from its own token.
    model_config = ConfigDict(extra="forbid")
    group_id: str | None = Field(pattern=OBJECT_ID.pattern)


class Task(BaseModel):
    id: str
    title: str
    done: bool
    created_at: str
    shared_with_group: str | None = None


class SharedTask(Task):
    mine: bool


def downstream(request: Request, user: Reader, token: IncomingToken) -> Hop:
    """downstream-api, on behalf of the caller, under the caller's correlation id."""
    client: Downstream = request.app.state.downstream
    return client.on_behalf_of(user, token, correlation_id(request))


DownstreamDep = Annotated[Hop, Depends(downstream)]
# Bodies are read only after the caller is authorized (and capped while they stream).
NewTask = Annotated[TaskIn, Depends(json_body(TaskIn))]
TaskChanges = Annotated[TaskPatch, Depends(json_body(TaskPatch))]
ShareWith = Annotated[TaskShare, Depends(json_body(TaskShare))]


def _answer(status: int, body: Any) -> Response:
    if status == 204:
        return Response(status_code=204)
    return JSONResponse(body, status_code=status)


@router.get("", response_model=list[Task])
async def list_tasks(down: DownstreamDep) -> Response:
    return _answer(*await down.call("GET", "/records"))


@router.post("", response_model=Task, status_code=201, openapi_extra=documented_body(TaskIn))
async def add_task(user: Writer, task: NewTask, down: DownstreamDep) -> Response:
    return _answer(*await down.call("POST", "/records", write=True, body=task.model_dump()))


@router.get("/shared", response_model=list[SharedTask])
async def list_shared_tasks(down: DownstreamDep) -> Response:
    """Tasks shared with any group you belong to (yours included), in your organization."""
    return _answer(*await down.call("GET", "/records/shared"))


@router.put("/{task_id}/share", response_model=Task, openapi_extra=documented_body(TaskShare))
async def share_task(task_id: TaskId, user: Writer, share: ShareWith, down: DownstreamDep) -> Response:
    """Share your task with one group you are a member of; `{"group_id": null}` stops sharing."""
    return _answer(*await down.call("PUT", f"/records/{task_id}/share", write=True, body=share.model_dump()))


@router.get("/{task_id}", response_model=Task)
async def get_task(task_id: TaskId, down: DownstreamDep) -> Response:
    return _answer(*await down.call("GET", f"/records/{task_id}"))


@router.patch("/{task_id}", response_model=Task, openapi_extra=documented_body(TaskPatch))
async def change_task(task_id: TaskId, user: Writer, patch: TaskChanges, down: DownstreamDep) -> Response:
    body = patch.model_dump(exclude_none=True)
    return _answer(*await down.call("PATCH", f"/records/{task_id}", write=True, body=body))


@router.delete("/{task_id}", status_code=204)
async def delete_task(task_id: TaskId, user: Writer, down: DownstreamDep) -> Response:
    return _answer(*await down.call("DELETE", f"/records/{task_id}", write=True))
