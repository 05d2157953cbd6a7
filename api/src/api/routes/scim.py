"""SCIM 2.0 Users (RFC 7643 / RFC 7644, the subset a provisioning service uses).

# zt: identity-standards-based-development-methodologies
Microsoft Entra's provisioning service (here: `zt provision`, the `provisioner` app) tells the
app who joins, changes, is deactivated and leaves, over a standard protocol instead of a
bespoke one. App-only, app role Users.Provision; a user's token gets 403 like on every app-only
route. The users are kept by downstream-api (the data tier owns data), reached with the api's
own app-only token (Users.Manage) in the caller's tenant: a provisioning client sees and
changes its own tenant's users only.

The resource is deliberately small, the attributes the app needs and no more: `externalId` (the
user's Entra object id: the key, with the tenant id; never userName or e-mail), `userName`,
`displayName`, `active`. Anything else (a tenant, roles, groups, e-mail addresses...) is refused
with 400 invalidSyntax rather than silently dropped: a body that tries to set what this endpoint
doesn't own is a mistake or an attack, and either way the sender should know. Map only these
four attributes in the Entra provisioning configuration.

What happens to a user's data: deactivated (`active: false`), it is kept and every request made
for them is refused (403 account_deactivated) until they are reactivated; deleted, their tasks
are deleted with them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from zerotrust.ids import OBJECT_ID

from ..dependencies import AsApp, Provisioner, PublicUrl
from ..downstream import AppHop, DownstreamError
from ..scim import (
    FILTER,
    ScimError,
    answer,
    list_response,
    patch_changes,
    read_object,
    resource,
    user_fields,
    whole_number,
)

router = APIRouter(prefix="/scim/v2", tags=["provisioning (SCIM 2.0)"])

# downstream-api answers at most this many users per request; a client asking for more gets this many
# and pages on (RFC 7644 3.4.2.4 lets a service provider return fewer than `count`).
MAX_PAGE = 100


async def scim_body(request: Request, caller: Provisioner) -> dict[str, Any]:
    """Read only after the caller is authorized."""
    return await read_object(request)


Body = Annotated[dict[str, Any], Depends(scim_body)]


async def _call(down: AppHop, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    try:
        status, answer = await down.call(method, path, body=body)
    except DownstreamError as exc:
        raise ScimError(exc.status, f"{exc.description} (correlation id {exc.correlation_id})") from None
    if status == 404:
        raise ScimError(404, "No such user.")
    if status == 409:
        raise ScimError(409, "This user (externalId) is already provisioned in this tenant.", "uniqueness")
    if status == 422:
        raise ScimError(400, "The user's attributes are not valid.", "invalidValue")
    return status, answer


def _user_path(user_id: str) -> str:
    # downstream-api's ids are GUIDs; anything else can't name a user, and is never put in a URL.
    if not OBJECT_ID.match(user_id):
        raise ScimError(404, "No such user.")
    return f"/users/{user_id}"


@router.post("/Users", status_code=201)
async def create_user(caller: Provisioner, base: PublicUrl, body: Body, down: AsApp) -> Response:
    _, user = await _call(down, "POST", "/users", user_fields(body))
    created = resource(base, user)
    return answer(created, 201, {"Location": created["meta"]["location"]})


@router.get("/Users")
async def list_users(
    caller: Provisioner,
    base: PublicUrl,
    down: AsApp,
    filter: Annotated[str | None, Query(max_length=300)] = None,
    start_index: Annotated[str | None, Query(alias="startIndex", max_length=12)] = None,
    count: Annotated[str | None, Query(max_length=12)] = None,
) -> Response:
    """Users of the caller's tenant, a page at a time: `startIndex` (1-based) and `count` (at most 100)."""
    # RFC 7644 3.4.2.4: a startIndex below 1 means 1, a negative count means 0 (totalResults only).
    first = max(1, whole_number("startIndex", start_index, 1))
    wanted = min(MAX_PAGE, max(0, whole_number("count", count, MAX_PAGE)))
    query = {"offset": str(min(first - 1, 2**31 - 1)), "limit": str(wanted)}
    if filter is not None:
        match = FILTER.match(filter)
        if match is None:
            raise ScimError(400, 'Supported filters: userName eq "..." and externalId eq "...".', "invalidFilter")
        attribute, value = match.group(1).lower(), re.sub(r"\\(.)", r"\1", match.group(2))
        if attribute == "externalid":
            if not OBJECT_ID.match(value):
                return list_response(first, 0, [])
            query["object_id"] = value
        else:
            query["user_name"] = value
    _, page = await _call(down, "GET", f"/users?{urlencode(query)}")
    return list_response(first, int(page["total"]), [resource(base, u) for u in page["users"]])


@router.get("/Users/{user_id}")
async def get_user(user_id: str, caller: Provisioner, base: PublicUrl, down: AsApp) -> Response:
    _, user = await _call(down, "GET", _user_path(user_id))
    return answer(resource(base, user))


@router.put("/Users/{user_id}")
async def replace_user(user_id: str, caller: Provisioner, base: PublicUrl, body: Body, down: AsApp) -> Response:
    path = _user_path(user_id)
    fields = user_fields(body)
    _, current = await _call(down, "GET", path)
    if fields.pop("object_id") != current["object_id"]:
        raise ScimError(400, "externalId can't be changed: it is the user's Entra object id.", "mutability")
    _, user = await _call(down, "PATCH", path, fields)
    return answer(resource(base, user))


@router.patch("/Users/{user_id}")
async def change_user(user_id: str, caller: Provisioner, base: PublicUrl, body: Body, down: AsApp) -> Response:
    path = _user_path(user_id)
    _, user = await _call(down, "PATCH", path, patch_changes(body))
    return answer(resource(base, user))


@router.delete("/Users/{user_id}", status_code=204)
async def delete_user(user_id: str, caller: Provisioner, down: AsApp) -> Response:
    await _call(down, "DELETE", _user_path(user_id))
    return Response(status_code=204)
