"""Calls to the api: the user's access token in the Authorization header, JSON both ways.

Every failure becomes an `ApiError` with a message a person can read; nothing from the api's
answer body is shown and the token never appears in an error or a log line.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from zerotrust.cae import challenged_claims
from zerotrust.paging import next_skiptoken
from zerotrust.tracing import client_span, outgoing

log = logging.getLogger("web.api")


class ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str, retry_after: str | None = None) -> None:
        super().__init__(title)
        self.status, self.title, self.detail, self.retry_after = status, title, detail, retry_after


class ClaimsChallenge(Exception):
    """The api (relaying the token service or Graph) or Graph itself wants a sign-in that meets `claims`;
    `write`: the change the person asked for, done once after they sign in again (web/cae.py)."""

    def __init__(self, claims: str, write: Any = None) -> None:
        super().__init__("claims challenge")
        self.claims, self.write = claims, write


class Task(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | int
    title: str
    done: bool
    created_at: str | None = None
    shared_with_group: str | None = None

    @cached_property  # a page uses each three times
    def path_id(self) -> str:
        return quote(str(self.id), safe="")


class TierView(BaseModel):
    """One tier's view of the caller, as the api's /me reports it."""

    model_config = ConfigDict(extra="allow")

    tenant_id: str | None = None
    object_id: str | None = None
    subject: str | None = None
    audience: str | None = None
    calling_app: str | None = None
    scopes: list[str] = []
    roles: list[str] = []


class Me(BaseModel):
    model_config = ConfigDict(extra="ignore")

    api: TierView
    # None when the api could not get downstream-api's view (it passes on an error body instead).
    downstream_api: TierView | None = None

    @field_validator("downstream_api", mode="before")
    @classmethod
    def _only_a_view(cls, value: Any) -> Any:
        return value if isinstance(value, dict) and value.get("object_id") else None


async def call(
    http: aiohttp.ClientSession, method: str, path: str, token: str, body: dict[str, Any] | None = None
) -> Any:
    answer, _ = await exchange(http, method, path, token, body)
    return answer


async def exchange(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    token: str,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> tuple[Any, str | None]:
    """As `call`, with a query; also the next page's $skiptoken when the answer is a page with more after it."""
    try:
        with client_span(f"{method} api", **{"http.request.method": method, "server.address": "api"}):
            headers = outgoing({"Authorization": f"Bearer {token}", "Accept": "application/json"})
            async with http.request(method, path, headers=headers, json=body, params=params) as response:
                status = response.status
                raw = await response.read()
                challenge = response.headers.get("WWW-Authenticate")
                wait = response.headers.get("Retry-After")
                link = response.headers.get("Link")
    except (TimeoutError, aiohttp.ClientError):
        log.warning("api %s %s: unreachable", method, path)
        raise ApiError(
            503,
            "The api is unavailable",
            "The web app could not reach the api. It may be starting or stopped; try again in a moment.",
        ) from None
    if status == 401 and (claims := challenged_claims(challenge)) is not None:
        # zt: secure-with-cae
        # The api's own claims challenge (it declared cp1 for us: this app's token carries xms_cc).
        log.info("api %s %s: claims challenge", method, path)
        raise ClaimsChallenge(claims)
    if status >= 400:
        # A 401 without claims is not retried: signing in again is the person's choice (the page says so).
        log.warning("api %s %s answered %s", method, path, status)
        if status == 429:
            seconds = wait if wait is not None and wait.isdigit() else "1"
            raise ApiError(
                429, "Too many requests", f"The api is limiting your requests; wait {seconds} s and try again.", seconds
            )
        raise _refusal(status, raw)
    try:
        return (json.loads(raw) if raw.strip() else None), next_skiptoken(link)
    except ValueError:
        raise ApiError(502, "The api answered unexpectedly", "Its answer was not JSON.") from None


# zt: protect-api
# What a page of the web app shows of a list at most; the next page is a link (the api's $skiptoken).
PAGE_SIZE = 50


def page_query(after: str | None) -> dict[str, str]:
    return {"$top": str(PAGE_SIZE), **({"$skiptoken": after} if after else {})}


def _error_code(raw: bytes) -> str | None:
    """The api's OAuth-style `error` code, if its answer has one: read to choose a message, never shown."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def _refusal(status: int, raw: bytes = b"") -> ApiError:
    if status == 403 and _error_code(raw) == "account_deactivated":
        # zt: identity-standards-based-development-methodologies
        # The provisioning service (SCIM) turned this person off here: downstream-api refuses them whatever
        # their token says, and they should hear that, not that some action is not allowed.
        return ApiError(
            403,
            "Your access was turned off",
            "Your access to this app was turned off by your organization: its provisioning service deactivated "
            "your account here. Your data is kept. Ask your administrator to turn your access back on, and give "
            "them the reference below.",
        )
    if status == 401:
        return ApiError(
            502,
            "The api did not accept the sign-in",
            "The api refused the access token the web app sent for you (401). Sign out and in again.",
        )
    if status == 403:
        return ApiError(
            403,
            "The api refused this request",
            "You are signed in, but the api does not allow you this action (403).",
        )
    if status == 404:
        return ApiError(404, "Not found", "The api has no such item for you.")
    if status == 503:
        # Something behind the api is down for a moment (the api says so): the same to the person.
        return ApiError(503, "Temporarily unavailable", "A service behind this page is unavailable; try again shortly.")
    if status >= 500:
        return ApiError(502, "The api failed", f"The api answered with an error ({status}). Try again later.")
    return ApiError(400, "The api did not accept this request", f"The api answered {status}.")


async def list_tasks(
    http: aiohttp.ClientSession, token: str, after: str | None = None
) -> tuple[list[Task], str | None]:
    """A page of the person's tasks (from where `after` says) and the next page's token, if there is one."""
    answer, following = await exchange(http, "GET", "/tasks", token, params=page_query(after))
    try:
        if not isinstance(answer, list):
            raise ValueError("not a list")
        return [Task.model_validate(item) for item in answer], following
    except (ValueError, ValidationError):
        raise ApiError(502, "The api answered unexpectedly", "The task list was not in the expected shape.") from None


async def add_task(http: aiohttp.ClientSession, token: str, title: str) -> None:
    await call(http, "POST", "/tasks", token, {"title": title})


async def complete_task(http: aiohttp.ClientSession, token: str, task_id: str) -> None:
    await call(http, "PATCH", f"/tasks/{quote(task_id, safe='')}", token, {"done": True})


async def delete_task(http: aiohttp.ClientSession, token: str, task_id: str) -> None:
    await call(http, "DELETE", f"/tasks/{quote(task_id, safe='')}", token)


async def delete_all_tasks(http: aiohttp.ClientSession, token: str) -> None:
    await call(http, "DELETE", "/tasks", token)


async def get_task(http: aiohttp.ClientSession, token: str, task_id: str) -> Task:
    answer = await call(http, "GET", f"/tasks/{quote(task_id, safe='')}", token)
    try:
        return Task.model_validate(answer)
    except ValidationError:
        raise ApiError(502, "The api answered unexpectedly", "The task was not in the expected shape.") from None


async def share_task(http: aiohttp.ClientSession, token: str, task_id: str, group_id: str | None) -> None:
    await call(http, "PUT", f"/tasks/{quote(task_id, safe='')}/share", token, {"group_id": group_id})


async def me(http: aiohttp.ClientSession, token: str) -> Me:
    answer = await call(http, "GET", "/me", token)
    try:
        return Me.model_validate(answer)
    except ValidationError:
        raise ApiError(502, "The api answered unexpectedly", "/me was not in the expected shape.") from None


class OrgTask(Task):
    owner: str
    owner_name: str | None = None  # Graph's displayName, as downstream-api read it: a label only


class OwnerCount(BaseModel):
    model_config = ConfigDict(extra="ignore")

    owner: str
    owner_name: str | None = None
    tasks: int
    done: int


class Summary(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tenant_id: str
    owners: list[OwnerCount]


# zt: permissions-require-admin-consent
async def org_tasks(
    http: aiohttp.ClientSession, token: str, after: str | None = None
) -> tuple[list[OrgTask], str | None]:
    answer, following = await exchange(http, "GET", "/org/tasks", token, params=page_query(after))
    try:
        if not isinstance(answer, list):
            raise ValueError("not a list")
        return [OrgTask.model_validate(item) for item in answer], following
    except (ValueError, ValidationError):
        raise ApiError(502, "The api answered unexpectedly", "The organization's tasks were not as expected.") from None


async def admin_summary(http: aiohttp.ClientSession, token: str) -> Summary:
    answer = await call(http, "GET", "/admin/tasks/summary", token)
    try:
        return Summary.model_validate(answer)
    except ValidationError:
        raise ApiError(502, "The api answered unexpectedly", "The summary was not in the expected shape.") from None
