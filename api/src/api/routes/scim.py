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

import json
import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from zerotrust.bodies import MAX_BODY_BYTES
from zerotrust.correlation import correlation_id
from zerotrust.ids import OBJECT_ID

from ..auth import Provisioner
from ..downstream import AppHop, Downstream, DownstreamError

router = APIRouter(prefix="/scim/v2", tags=["provisioning (SCIM 2.0)"])

MEDIA_TYPE = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

_FILTER = re.compile(r'^\s*(userName|externalId)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
# Attributes a client may write, and how downstream-api calls them.
_WRITABLE = {"username": "user_name", "displayname": "display_name", "active": "active"}
# Read-only (RFC 7643 2.2): accepted in a body and ignored, as the RFC says.
_READ_ONLY = {"id", "meta"}


class ScimError(Exception):
    """An RFC 7644 3.12 error: status, an optional scimType, a detail a person can act on."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


async def scim_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ScimError)
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(exc.status), "detail": exc.detail}
    if exc.scim_type:
        body["scimType"] = exc.scim_type
    return JSONResponse(body, status_code=exc.status, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})


def scim_downstream(request: Request, caller: Provisioner) -> AppHop:
    client: Downstream = request.app.state.downstream
    return client.as_app(caller, correlation_id(request))


ScimDownstream = Annotated[AppHop, Depends(scim_downstream)]


async def scim_body(request: Request, caller: Provisioner) -> dict[str, Any]:
    """The JSON object in the body, read only after the caller is authorized, capped in size."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in (MEDIA_TYPE, "application/json"):
        raise ScimError(415, f"Send the body as {MEDIA_TYPE}.")
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ScimError(413, "The request body is too large.")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except ValueError:
        raise ScimError(400, "The body is not JSON.", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a JSON object.", "invalidSyntax")
    return body


Body = Annotated[dict[str, Any], Depends(scim_body)]


def _resource(request: Request, user: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": user["id"],
        "externalId": user["object_id"],
        "userName": user["user_name"],
        "active": user["active"],
        "meta": {
            "resourceType": "User",
            "created": user["created_at"],
            "lastModified": user["updated_at"],
            "location": _location(request, user["id"]),
        },
    }
    if user.get("display_name") is not None:
        resource["displayName"] = user["display_name"]
    return resource


def _location(request: Request, user_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/scim/v2/Users/{quote(user_id)}"


def _answer(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _string(name: str, value: Any, *, max_length: int = 256, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ScimError(400, f"{name} must be a non-empty string of at most {max_length} characters.", "invalidValue")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ScimError(400, f"{name} must not contain control characters.", "invalidValue")
    return value


def _active(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    # Entra's provisioning service sends "True"/"False" as strings in PATCH; accept exactly those.
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(400, "active must be true or false.", "invalidValue")


def _user_fields(body: dict[str, Any]) -> dict[str, Any]:
    """A full User resource (POST, PUT): known attributes only, validated."""
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or schemas != [USER_SCHEMA]:
        raise ScimError(400, f"schemas must be [{USER_SCHEMA!r}].", "invalidSyntax")
    unknown = sorted(k for k in body if k.lower() not in {"schemas", "externalid", *_WRITABLE, *_READ_ONLY})
    if unknown:
        # zt: identity-standards-based-development-methodologies - no mass assignment: tenant,
        # roles, groups and the rest are not this endpoint's to set (the token says the tenant).
        raise ScimError(400, f"Attributes not supported here: {', '.join(unknown)[:200]}.", "invalidSyntax")
    fields = {k.lower(): v for k, v in body.items()}
    external_id = fields.get("externalid")
    if not isinstance(external_id, str) or not OBJECT_ID.match(external_id):
        raise ScimError(
            400, "externalId must be the user's Microsoft Entra object id (a lowercase GUID).", "invalidValue"
        )
    return {
        "object_id": external_id,
        "user_name": _string("userName", fields.get("username")),
        "display_name": _string("displayName", fields.get("displayname"), required=False),
        "active": _active(fields.get("active", True)),
    }


def _patch_changes(body: dict[str, Any]) -> dict[str, Any]:
    """An RFC 7644 3.5.2 PatchOp, "add"/"replace" of userName, displayName or active."""
    if body.get("schemas") != [PATCH_SCHEMA]:
        raise ScimError(400, f"schemas must be [{PATCH_SCHEMA!r}].", "invalidSyntax")
    unknown = sorted(k for k in body if k not in ("schemas", "Operations"))
    operations = body.get("Operations")
    if unknown or not isinstance(operations, list) or not operations or len(operations) > 20:
        raise ScimError(400, "A PatchOp holds schemas and 1 to 20 Operations, nothing else.", "invalidSyntax")
    changes: dict[str, Any] = {}
    for operation in operations:
        if not isinstance(operation, dict) or set(operation) - {"op", "path", "value"}:
            raise ScimError(400, "Each operation holds op, path and value only.", "invalidSyntax")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "replace"):
            raise ScimError(400, "Only add and replace operations are supported.", "invalidValue")
        path, value = operation.get("path"), operation.get("value")
        if path is None:
            if not isinstance(value, dict):
                raise ScimError(400, "Without a path the value must be an object of attributes.", "invalidValue")
            items = list(value.items())
        elif isinstance(path, str):
            items = [(path, value)]
        else:
            raise ScimError(400, "path must be a string.", "invalidPath")
        for name, item in items:
            key = str(name).lower()
            if key in ("externalid", "id"):
                raise ScimError(400, f"{name} can't be changed.", "mutability")
            if key not in _WRITABLE:
                raise ScimError(400, f"{str(name)[:100]} is not an attribute that can be changed here.", "invalidPath")
            if key == "active":
                changes["active"] = _active(item)
            else:
                changes[_WRITABLE[key]] = _string(str(name), item, required=key == "username")
    return changes


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
async def create_user(caller: Provisioner, request: Request, body: Body, down: ScimDownstream) -> Response:
    _, user = await _call(down, "POST", "/users", _user_fields(body))
    resource = _resource(request, user)
    return _answer(resource, 201, {"Location": resource["meta"]["location"]})


# downstream-api answers at most this many users per request; a client asking for more gets this many
# and pages on (RFC 7644 3.4.2.4 lets a service provider return fewer than `count`).
MAX_PAGE = 100


def _whole_number(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ScimError(400, f"{name} must be a whole number.", "invalidValue") from None


def _list(start_index: int, total: int, resources: list[dict[str, Any]]) -> Response:
    return _answer(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


@router.get("/Users")
async def list_users(
    caller: Provisioner,
    request: Request,
    down: ScimDownstream,
    filter: Annotated[str | None, Query(max_length=300)] = None,
    start_index: Annotated[str | None, Query(alias="startIndex", max_length=12)] = None,
    count: Annotated[str | None, Query(max_length=12)] = None,
) -> Response:
    """Users of the caller's tenant, a page at a time: `startIndex` (1-based) and `count` (at most 100)."""
    # RFC 7644 3.4.2.4: a startIndex below 1 means 1, a negative count means 0 (totalResults only).
    first = max(1, _whole_number("startIndex", start_index, 1))
    wanted = min(MAX_PAGE, max(0, _whole_number("count", count, MAX_PAGE)))
    query = {"offset": str(min(first - 1, 2**31 - 1)), "limit": str(wanted)}
    if filter is not None:
        match = _FILTER.match(filter)
        if match is None:
            raise ScimError(400, 'Supported filters: userName eq "..." and externalId eq "...".', "invalidFilter")
        attribute, value = match.group(1).lower(), re.sub(r"\\(.)", r"\1", match.group(2))
        if attribute == "externalid":
            if not OBJECT_ID.match(value):
                return _list(first, 0, [])
            query["object_id"] = value
        else:
            query["user_name"] = value
    _, page = await _call(down, "GET", f"/users?{urlencode(query)}")
    return _list(first, int(page["total"]), [_resource(request, u) for u in page["users"]])


@router.get("/Users/{user_id}")
async def get_user(user_id: str, caller: Provisioner, request: Request, down: ScimDownstream) -> Response:
    _, user = await _call(down, "GET", _user_path(user_id))
    return _answer(_resource(request, user))


@router.put("/Users/{user_id}")
async def replace_user(
    user_id: str, caller: Provisioner, request: Request, body: Body, down: ScimDownstream
) -> Response:
    path = _user_path(user_id)
    fields = _user_fields(body)
    _, current = await _call(down, "GET", path)
    if fields.pop("object_id") != current["object_id"]:
        raise ScimError(400, "externalId can't be changed: it is the user's Entra object id.", "mutability")
    _, user = await _call(down, "PATCH", path, fields)
    return _answer(_resource(request, user))


@router.patch("/Users/{user_id}")
async def change_user(
    user_id: str, caller: Provisioner, request: Request, body: Body, down: ScimDownstream
) -> Response:
    path = _user_path(user_id)
    _, user = await _call(down, "PATCH", path, _patch_changes(body))
    return _answer(_resource(request, user))


@router.delete("/Users/{user_id}", status_code=204)
async def delete_user(user_id: str, caller: Provisioner, down: ScimDownstream) -> Response:
    await _call(down, "DELETE", _user_path(user_id))
    return Response(status_code=204)
