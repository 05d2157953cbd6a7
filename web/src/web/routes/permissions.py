"""What the person granted this app, as the app holds it.

# zt: identity
Each access token in the person's (server-side) MSAL cache, with the scopes the token service said
it granted: MSAL records its `scope` answer with the token. Nothing here decodes a token. Beside
them, what the app asks for and when: read at sign-in, write at the first write, the
organization's tasks only with an administrator's consent.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..dependencies import clients, require_session
from ..pages import page
from ..session import Session

router = APIRouter(tags=["permissions"])


@router.get("/permissions")
async def permissions(request: Request, session: Session = Depends(require_session)) -> Response:
    c = clients(request)
    held = await c.tokens.held(session)
    granted = {scope for token in held for scope in token.scopes}
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
            "scopes": [s for s in t.scopes if s not in ("openid", "profile", "offline_access")],
            "expires": dt.datetime.fromtimestamp(t.expires_on, dt.UTC).strftime("%H:%M:%S UTC"),
        }
        for t in held
    ]
    return page(request, "permissions.html", rows=rows, tokens=tokens)
