"""The provisioning service's part: when an administrator disables, enables, deletes or restores a user,
tell the app over its SCIM endpoint, as Entra's provisioning service does for an app configured for
provisioning (a deleted user is soft-deleted first: `active=false`, as Entra sends).

# zt: secure-with-cae
# zt: identity-standards-based-development-methodologies
Access tokens already issued stay valid until they expire (an hour), and the app's cached on-behalf-of
tokens with them; the app learns of the account change here and refuses the user where the data is.
In Entra the provisioning service runs an incremental cycle about every 40 minutes (or at once with
"provision on demand"); here the push is immediate. The call is the provisioner app's own: an app-only
token with the Users.Provision role, in the user's tenant, to the URL configured as EMULATOR_SCIM_URL.
"""

from __future__ import annotations

import json
import logging
import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import aiohttp

if TYPE_CHECKING:
    from .core import Emulator
    from .directory import User

log = logging.getLogger(__name__)

PROVISIONER, APP, ROLE = "provisioner", "api", "Users.Provision"
SCIM = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def push(emu: Emulator, user: User, active: bool | None) -> str:
    """`active` False or True: the user's state; None: the user is gone. Answers what happened, in words."""
    base = emu.settings.scim_url.rstrip("/")
    if not base:
        return "no app is configured for provisioning (EMULATOR_SCIM_URL)"
    client, resource = emu.directory.by_name[PROVISIONER], emu.directory.by_name[APP]
    token, _ = emu.issuer.app_access_token(user.tenant_id, client, resource, [ROLE], "2", None)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM, "Accept": SCIM}
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout, headers=headers, trust_env=False) as http:
            found = await _find(http, base, user.object_id)
            if active is None:
                if found is not None:
                    await _call(http, "DELETE", f"{base}/Users/{quote(found)}")
                return "deleted in the app"
            if found is None:
                body = {
                    "schemas": [USER_SCHEMA],
                    "externalId": user.object_id,
                    "userName": user.upn,
                    "displayName": user.display_name,
                    "active": active,
                }
                await _call(http, "POST", f"{base}/Users", body)
            else:
                operation = {"op": "replace", "path": "active", "value": active}
                await _call(
                    http,
                    "PATCH",
                    f"{base}/Users/{quote(found)}",
                    {"schemas": [PATCH_SCHEMA], "Operations": [operation]},
                )
            return "activated in the app" if active else "deactivated in the app"
    except (aiohttp.ClientError, TimeoutError, OSError, ssl.SSLError, ValueError) as exc:
        log.warning("provisioning %s to %s failed: %r", user.upn, base, exc)
        return f"the app could not be told ({type(exc).__name__}); its provisioning will catch up"


async def _find(http: aiohttp.ClientSession, base: str, object_id: str) -> str | None:
    query = urlencode({"filter": f'externalId eq "{object_id}"'})
    found = await _call(http, "GET", f"{base}/Users?{query}")
    resources = found.get("Resources") if isinstance(found, dict) else None
    return str(resources[0]["id"]) if isinstance(resources, list) and resources else None


async def _call(http: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body) if body is not None else None
    async with http.request(method, url, data=data) as response:
        if response.status >= 400:
            raise ValueError(f"{method} {url} answered {response.status}")
        text = await response.text()
        return json.loads(text) if text else None
