"""Identity through the chain: the same person as the web app, the api and downstream-api see them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import api_client
from ..dependencies import ApiToken, ClientsDep
from ..pages import page

router = APIRouter(tags=["chain"])


# zt: protected-api-example
# The page shows, per tier, the scopes and calling app that tier's permission design accepted: Tasks.*
# from the web app at the api, Records.Read from the api downstream.
# zt: api-calls-api
@router.get("/chain")
async def chain(request: Request, c: ClientsDep, token: ApiToken) -> Response:
    # The web column comes from the ID token (kept as claims in the session, the token itself is
    # not kept); the others are what each tier validated from the token it received.
    try:
        me = await api_client.me(c.api, token)
    except api_client.ApiError as err:
        return page(
            request,
            "chain.html",
            err.status,
            me=None,
            api_error=err,
            client_id=c.settings.client_id,
            app_names=c.settings.app_names,
        )
    return page(
        request, "chain.html", me=me, api_error=None, client_id=c.settings.client_id, app_names=c.settings.app_names
    )
