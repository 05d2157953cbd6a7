"""The signed-in user's tasks, kept by the api (and below it, downstream-api)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData
from zerotrust.ids import OBJECT_ID

from .. import api_client
from ..consent import Action, PendingWrite, write_token
from ..dependencies import api_token, clients, csrf_form, require_session
from ..pages import error_page, page
from ..session import Session

router = APIRouter(tags=["tasks"])

MAX_TITLE = 200
# Ids go into the api's URL: letters, digits, - and _ only, so no path can be smuggled in.
TaskId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _write(request: Request, action: Action, **what: str) -> PendingWrite:
    # zt: acquire-application-authorization-to-access-resources - writes ask for the write scope
    # (silently first; write_token raises ConsentRequired when the person must be asked).
    return PendingWrite(action, **what)


@router.get("/tasks")
async def tasks_page(request: Request, session: Session = Depends(require_session)) -> Response:
    token = await api_token(request, session)
    tasks = await api_client.list_tasks(clients(request).api, token)
    return page(request, "tasks.html", tasks=tasks, max_title=MAX_TITLE)


@router.post("/tasks")
async def add_task(request: Request, form: FormData = Depends(csrf_form)) -> Response:
    raw = form.get("title")
    title = raw.strip() if isinstance(raw, str) else ""
    if not title or len(title) > MAX_TITLE:
        return error_page(
            request,
            400,
            "That title can't be used",
            f"A task needs a title of 1 to {MAX_TITLE} characters.",
            retry="/tasks",
        )
    write = _write(request, "add", title=title)
    await write.perform(clients(request).api, await write_token(request, request.state.session, write))
    return RedirectResponse("/tasks", status_code=303)


@router.post("/tasks/{task_id}/complete")
async def complete_task(request: Request, task_id: TaskId, form: FormData = Depends(csrf_form)) -> Response:
    write = _write(request, "complete", task_id=task_id)
    await write.perform(clients(request).api, await write_token(request, request.state.session, write))
    return RedirectResponse("/tasks", status_code=303)


@router.post("/tasks/{task_id}/delete")
async def delete_task(request: Request, task_id: TaskId, form: FormData = Depends(csrf_form)) -> Response:
    write = _write(request, "delete", task_id=task_id)
    await write.perform(clients(request).api, await write_token(request, request.state.session, write))
    return RedirectResponse("/tasks", status_code=303)


@router.get("/tasks/{task_id}/share")
async def share_page(request: Request, task_id: TaskId, session: Session = Depends(require_session)) -> Response:
    # zt: configure-tokens-group-claims-app-roles - the groups offered are the ones downstream-api
    # resolves for you (and will accept): the web app keeps no group list of its own.
    token = await api_token(request, session)
    api = clients(request).api
    # Two independent calls through the chain: one round trip's wait, not two.
    task, groups = await asyncio.gather(api_client.get_task(api, token, task_id), api_client.my_groups(api, token))
    return page(request, "share.html", task=task, groups=groups)


@router.post("/tasks/{task_id}/share")
async def share_task(request: Request, task_id: TaskId, form: FormData = Depends(csrf_form)) -> Response:
    group = form.get("group_id")
    if group == "":
        write = _write(request, "unshare", task_id=task_id)
    elif isinstance(group, str) and OBJECT_ID.fullmatch(group):
        write = _write(request, "share", task_id=task_id, group_id=group)
    else:
        return error_page(
            request,
            400,
            "That group can't be used",
            "Choose one of your groups from the list, or stop sharing.",
            retry=f"/tasks/{task_id}/share",
        )
    await write.perform(clients(request).api, await write_token(request, request.state.session, write))
    return RedirectResponse("/tasks", status_code=303)
