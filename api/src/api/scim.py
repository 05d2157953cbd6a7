"""SCIM 2.0 Users as this app speaks it (RFC 7643 / RFC 7644): errors, bodies, and the User resource.

Deliberately small, the attributes the app needs and no more: `externalId` (the user's Entra object id:
the key, with the tenant id; never userName or e-mail), `userName`, `displayName`, `active`. Anything
else is refused with 400 invalidSyntax rather than silently dropped (routes/scim.py says why).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse
from zerotrust.bodies import media_type, read_body
from zerotrust.ids import OBJECT_ID

MEDIA_TYPE = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

FILTER = re.compile(r'^\s*(userName|externalId)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
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
    headers = {"Cache-Control": "no-store"}
    if exc.status == 503:
        headers["Retry-After"] = "5"  # as every other 503 of the api: a dependency is down, try again shortly
    return JSONResponse(body, status_code=exc.status, media_type=MEDIA_TYPE, headers=headers)


async def read_object(request: Request) -> dict[str, Any]:
    """The JSON object in the body (capped while it streams), or a SCIM error saying what is wrong."""
    if media_type(request) not in (MEDIA_TYPE, "application/json"):
        raise ScimError(415, f"Send the body as {MEDIA_TYPE}.")
    try:
        body = json.loads(await read_body(request))
    except ValueError:
        raise ScimError(400, "The body is not JSON.", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a JSON object.", "invalidSyntax")
    return body


def resource(base_url: str, user: dict[str, Any]) -> dict[str, Any]:
    """`base_url`: the api's configured public address (settings.public_base_url), never the Host header."""
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
            "location": f"{base_url}/scim/v2/Users/{quote(user['id'])}",
        },
    }
    if user.get("display_name") is not None:
        resource["displayName"] = user["display_name"]
    return resource


def answer(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
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


def user_fields(body: dict[str, Any]) -> dict[str, Any]:
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


def patch_changes(body: dict[str, Any]) -> dict[str, Any]:
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


def whole_number(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ScimError(400, f"{name} must be a whole number.", "invalidValue") from None


def list_response(start_index: int, total: int, resources: list[dict[str, Any]]) -> JSONResponse:
    return answer(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )
