"""The signed-in user's tasks, kept by the api (and below it, downstream-api)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from zerotrust.ids import OBJECT_ID

from .. import api_client, groups, guests, notices
from ..api_client import ClaimsChallenge
from ..consent import PendingWrite, write_token
from ..dependencies import ApiToken, Clients, ClientsDep, CsrfForm, CurrentSession, confirm_with_graph
from ..pages import error_page, page
from ..sessions import Session

router = APIRouter(tags=["tasks"])

MAX_TITLE = 200
# Ids go into the api's URL: letters, digits, - and _ only, so no path can be smuggled in.
TaskId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


async def _done(request: Request, c: Clients, session: Session, write: PendingWrite) -> Response:
    # zt: acquire-application-authorization-to-access-resources
    # Writes ask for the write scope (silently first; write_token raises ConsentRequired when the person
    # must be asked, and the write waits for their answer).
    try:
        # zt: secure-with-cae
        # Graph confirms the user first; a claims challenge (Graph's or the api's) carries the write along,
        # to be done once after the person signs in again.
        await confirm_with_graph(request, c, session)
        await write.perform(c.api, await write_token(c, session, write))
    except ClaimsChallenge as challenge:
        raise ClaimsChallenge(challenge.claims, write) from None
    # Said on the next page (web/notices.py), so the person knows it was done.
    return notices.tell(RedirectResponse("/tasks", status_code=303), write.action, secure=c.settings.cookie_secure)


# Where a page of a list starts: the api's $skiptoken, passed through as it came (the api checks it).
PageToken = Annotated[str | None, Query(alias="page", pattern=r"^[A-Za-z0-9_-]{1,200}$")]


@router.get("/tasks")
async def tasks_page(request: Request, c: ClientsDep, token: ApiToken, page_token: PageToken = None) -> Response:
    # zt: protect-api
    # A page of tasks at a time (api_client.PAGE_SIZE), the next one a link: never the whole list at once.
    tasks, following = await api_client.list_tasks(c.api, token, page_token)
    # zt: configure-tokens-group-claims-app-roles - a shared task names its group (asked only then).
    names = await groups.group_names(c.api, token) if any(t.shared_with_group for t in tasks) else {}
    return page(
        request,
        "tasks.html",
        tasks=tasks,
        group_names=names,
        max_title=MAX_TITLE,
        next_page=following,
        paged=bool(page_token),
    )


@router.post("/tasks")
async def add_task(request: Request, c: ClientsDep, session: CurrentSession, form: CsrfForm) -> Response:
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
    return await _done(request, c, session, PendingWrite("add", title=title))


@router.post("/tasks/{task_id}/complete")
async def complete_task(
    request: Request, task_id: TaskId, c: ClientsDep, session: CurrentSession, form: CsrfForm
) -> Response:
    return await _done(request, c, session, PendingWrite("complete", task_id=task_id))


@router.post("/tasks/{task_id}/delete")
async def delete_task(
    request: Request, task_id: TaskId, c: ClientsDep, session: CurrentSession, form: CsrfForm
) -> Response:
    return await _done(request, c, session, PendingWrite("delete", task_id=task_id))


@router.post("/tasks/delete-all")
async def delete_all_tasks(request: Request, c: ClientsDep, session: CurrentSession, form: CsrfForm) -> Response:
    # zt: secure-with-cae
    # Sensitive: the api asks for authentication context c1 (a second factor); web/cae.py asks the person.
    return await _done(request, c, session, PendingWrite("delete_all"))


@router.get("/tasks/{task_id}/share")
async def share_page(request: Request, task_id: TaskId, c: ClientsDep, token: ApiToken) -> Response:
    # zt: configure-tokens-group-claims-app-roles
    # The groups offered are the ones downstream-api resolves for you (and will accept): the web app
    # keeps no group list of its own. Two independent calls through the chain: one round trip's wait.
    task, mine = await asyncio.gather(api_client.get_task(c.api, token, task_id), groups.my_groups(c.api, token))
    return page(
        request,
        "share.html",
        task=task,
        groups=mine,
        group_names=groups.names_of(mine),
        can=guests.CAN,
        cannot=guests.CANNOT,
    )


@router.post("/tasks/{task_id}/share")
async def share_task(
    request: Request, task_id: TaskId, c: ClientsDep, session: CurrentSession, form: CsrfForm
) -> Response:
    group = form.get("group_id")
    if group == "":
        write = PendingWrite("unshare", task_id=task_id)
    elif isinstance(group, str) and OBJECT_ID.fullmatch(group):
        write = PendingWrite("share", task_id=task_id, group_id=group)
    else:
        return error_page(
            request,
            400,
            "That group can't be used",
            "Choose one of your groups from the list, or stop sharing.",
            retry=f"/tasks/{task_id}/share",
        )
    try:
        return await _done(request, c, session, write)
    except api_client.ApiError as refused:
        # zt: zero-trust-token-customization
        # The api refuses a guest's share with a group (its decision); she hears the guest policy.
        if refused.status != 403 or write.action != "share" or not guests.is_guest(session):
            raise
        return guests.refused(request, "Guests can't share with the organization's groups")
