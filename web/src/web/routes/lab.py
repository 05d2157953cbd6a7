"""The attack lab: the forged and misplaced tokens of devtools.attacks, fired at the api from this server with
the signed-in user's real token as the material, and what the api answered to each.

Local only: this module is imported (and its routes exist) only when WEB_ATTACK_LAB is on, which zt run sets
and the settings refuse in production; it is the one place the web imports the developer tooling. Every
token stays on the server: the page shows the status, the challenge and the verdict, never a token.
"""

from __future__ import annotations

import anyio.to_thread
from devtools.attacks import ATTACKS
from devtools.firing import KeySetCache, KeySetUnavailable, Result, fire_attacks
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..dependencies import ApiToken, ClientsDep, CsrfForm, CurrentSession
from ..pages import error_page, page
from ..sessions import IdentityProviderUnavailable

router = APIRouter(tags=["lab"])

REALM = "api"
TARGET_PATH = "/tasks"
KEYS = KeySetCache()


def _lab_page(request: Request, target: str, results: dict[str, Result] | None = None) -> Response:
    summary = None
    if results:
        verdicts = [r.verdict for r in results.values()]
        summary = {v: verdicts.count(v) for v in ("PASS", "FAIL", "SKIP", "ERROR")}
    return page(request, "lab.html", attacks=ATTACKS, results=results or {}, summary=summary, target=target)


# zt: protect-api
@router.get("/lab")
async def lab(request: Request, c: ClientsDep, session: CurrentSession) -> Response:
    return _lab_page(request, c.settings.api_url + TARGET_PATH)


# zt: protect-api
@router.post("/lab")
async def fire_at_api(request: Request, c: ClientsDep, form: CsrfForm, token: ApiToken) -> Response:
    choice = form.get("attack")
    chosen = [a for a in ATTACKS if choice in ("all", a.id)]
    if not chosen:
        return error_page(request, 400, "No such attack", "Pick an attack from the list.", retry="/lab")
    jwks_uri = (await anyio.to_thread.run_sync(c.signin.discovery)).get("jwks_uri")
    target = c.settings.api_url + TARGET_PATH
    try:
        results = await anyio.to_thread.run_sync(
            fire_attacks, chosen, token, KEYS, str(jwks_uri), target, REALM, c.settings.api_timeout_seconds
        )
    except KeySetUnavailable:
        raise IdentityProviderUnavailable("key set") from None
    return _lab_page(request, target, results)
