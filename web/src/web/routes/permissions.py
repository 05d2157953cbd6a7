"""What the person granted this app, as the app holds it.

# zt: identity
Each access token in the person's (server-side) MSAL cache, with the scopes the token service said
it granted: MSAL records its `scope` answer with the token. Nothing here decodes a token. Beside
them, what the app asks for and when: read at sign-in, write at the first write, the
organization's tasks only with an administrator's consent.
"""

from __future__ import annotations

import datetime as dt
import time

import msal
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..dependencies import ClientsDep, CurrentSession
from ..pages import page

router = APIRouter(tags=["permissions"])


@router.get("/permissions")
async def permissions(request: Request, c: ClientsDep, session: CurrentSession) -> Response:
    # region quote: granted-scopes
    cache = await c.signin.tokens.cache(session)
    # The access tokens the user's cache holds for them, as MSAL recorded them: the scopes the token
    # service said it granted (its `scope` answer, the entry's target), and until when.
    entries = (
        cache.search(
            msal.TokenCache.CredentialType.ACCESS_TOKEN, query={"home_account_id": session.user.home_account_id}
        )
        if cache is not None
        else []
    )
    now = time.time()
    held = sorted(
        (tuple(sorted(str(e.get("target", "")).split())), int(e.get("expires_on", 0)))
        for e in entries
        if int(e.get("expires_on", 0)) > now
    )
    granted = {scope for scopes, _ in held for scope in scopes}
    # endregion
    asked = [
        ("at sign-in, for every read", c.settings.api_scopes, "you"),
        ("the first time you add, complete or delete a task", c.settings.api_write_scopes, "you"),
        ("when you open Organization", c.settings.api_org_scopes, "an administrator, for the whole tenant"),
    ]
    rows = [
        {"when": when, "scope": scope, "short": scope.rsplit("/", 1)[-1], "who": who, "held": scope in granted}
        for when, scopes, who in asked
        for scope in scopes
    ]
    tokens = [
        {
            "scopes": [s for s in scopes if s not in ("openid", "profile", "offline_access")],
            "expires": dt.datetime.fromtimestamp(expires_on, dt.UTC),
        }
        for scopes, expires_on in held
    ]
    return page(request, "permissions.html", rows=rows, tokens=tokens)
