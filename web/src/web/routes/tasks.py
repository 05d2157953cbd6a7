"""The signed-in user's tasks, kept by the api (and below it, downstream-api)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from .. import api_client
from ..dependencies import api_token, clients, csrf_form, require_session
from ..pages import error_page, page
from ..session import Session

router = APIRouter(tags=["tasks"])

MAX_TITLE = 200
# Ids go into the api's URL: letters, digits, - and _ only, so no path can be smuggled in.
TaskId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


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
    token = await api_token(request, request.state.session)
    await api_client.add_task(clients(request).api, token, title)
    return RedirectResponse("/tasks", status_code=303)


@router.post("/tasks/{task_id}/complete")
async def complete_task(request: Request, task_id: TaskId, form: FormData = Depends(csrf_form)) -> Response:
    token = await api_token(request, request.state.session)
    await api_client.complete_task(clients(request).api, token, task_id)
    return RedirectResponse("/tasks", status_code=303)


@router.post("/tasks/{task_id}/delete")
async def delete_task(request: Request, task_id: TaskId, form: FormData = Depends(csrf_form)) -> Response:
    token = await api_token(request, request.state.session)
    await api_client.delete_task(clients(request).api, token, task_id)
    return RedirectResponse("/tasks", status_code=303)
