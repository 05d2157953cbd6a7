"""The signed-in user's tasks: kept by downstream-api as records, reached on the user's behalf."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from zerotrust.bodies import documented_body, json_body
from zerotrust.ids import OBJECT_ID
from zerotrust.paging import Page, Paging, link_next

from ..dependencies import (
    STEP_UP,
    OnBehalfOfCaller,
    TasksRead,
    TasksWrite,
    TasksWriteSteppedUp,
    protect,
    refuse_guests,
)

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


# Bodies are read only after the caller is authorized (and capped while they stream).
NewTask = Annotated[TaskIn, Depends(json_body(TaskIn))]
TaskChanges = Annotated[TaskPatch, Depends(json_body(TaskPatch))]
ShareWith = Annotated[TaskShare, Depends(json_body(TaskShare))]


def answer(status: int, body: Any) -> Response:
    """downstream-api's answer, passed on as it is (its errors were mapped by the hop)."""
    if status == 204:
        return Response(status_code=204)
    return JSONResponse(body, status_code=status)


def page_answer(path: str, page: Page, status: int, body: Any, following: str | None) -> Response:
    """A page of downstream-api's list as this API's own: the next page's address is this API's."""
    response = answer(status, body)
    if following is not None and status == 200:
        response.headers["Link"] = link_next(path, page, following)
    return response


# region quote: list-tasks
@router.get("", response_model=list[Task])
async def list_tasks(user: TasksRead, down: OnBehalfOfCaller, page: Paging) -> Response:
    """Your tasks, oldest first, a page at a time: `$top` (at most 500), `$skiptoken` from the `Link` header."""
    return page_answer("/tasks", page, *await down.page("GET", "/records", page))


# endregion


@router.post("", response_model=Task, status_code=201, openapi_extra=documented_body(TaskIn))
async def add_task(user: TasksWrite, task: NewTask, down: OnBehalfOfCaller) -> Response:
    return answer(*await down.call("POST", "/records", write=True, body=task.model_dump()))


@router.get("/shared", response_model=list[SharedTask])
async def list_shared_tasks(user: TasksRead, down: OnBehalfOfCaller, page: Paging) -> Response:
    """Tasks shared with any group you belong to (yours included), in your organization, a page at a time."""
    return page_answer("/tasks/shared", page, *await down.page("GET", "/records/shared", page))


@router.delete("", status_code=204)
async def delete_all_tasks(user: TasksWriteSteppedUp, down: OnBehalfOfCaller) -> Response:
    """Delete every task of yours. Sensitive: needs authentication context c1 (a second factor)."""
    return answer(*await down.call("DELETE", "/records", write=True, context=STEP_UP))


@router.put("/{task_id}/share", response_model=Task, openapi_extra=documented_body(TaskShare))
async def share_task(task_id: TaskId, user: TasksWrite, share: ShareWith, down: OnBehalfOfCaller) -> Response:
    """Share your task with one group you are a member of (sensitive: needs authentication context c1, a
    second factor); `{"group_id": null}` stops sharing, which needs nothing more."""
    if share.group_id is not None:
        refuse_guests(user)  # guests may not share with the organization's groups
    # zt: secure-with-cae
    context = STEP_UP if share.group_id is not None else None
    if context:
        protect.require_context(user, context)
    body = share.model_dump()
    return answer(*await down.call("PUT", f"/records/{task_id}/share", write=True, body=body, context=context))


@router.get("/{task_id}", response_model=Task)
async def get_task(task_id: TaskId, user: TasksRead, down: OnBehalfOfCaller) -> Response:
    return answer(*await down.call("GET", f"/records/{task_id}"))


@router.patch("/{task_id}", response_model=Task, openapi_extra=documented_body(TaskPatch))
async def change_task(task_id: TaskId, user: TasksWrite, patch: TaskChanges, down: OnBehalfOfCaller) -> Response:
    body = patch.model_dump(exclude_none=True)
    return answer(*await down.call("PATCH", f"/records/{task_id}", write=True, body=body))


@router.delete("/{task_id}", status_code=204)
async def delete_task(task_id: TaskId, user: TasksWrite, down: OnBehalfOfCaller) -> Response:
    return answer(*await down.call("DELETE", f"/records/{task_id}", write=True))
