"""Identity through the chain: the same person as the web app, the api and downstream-api see them, hop by hop,
down to the identity downstream-api is to the database."""

from __future__ import annotations

from typing import Any

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
# zt: token-management
# Each tier's own token, shown by the claims it validated (never the token itself): the audience differs at
# every hop, the calling app and its credential (azpacr) say who obtained it.
@router.get("/chain")
async def chain(request: Request, c: ClientsDep, token: ApiToken) -> Response:
    # The web column comes from the ID token (kept as claims in the session, the token itself is
    # not kept); the others are what each tier validated from the token it received.
    # This request's own trace, where traces are shown and the session remembered it (it was sampled): all
    # three tiers and the database, once the person follows the link.
    cid = request.state.correlation_id
    own = cid in getattr(request.state, "recent_traces", ())
    context: dict[str, Any] = {
        "client_id": c.settings.client_id,
        "trace_id": cid if own else None,
        # Apps by their registered names, ids a click away (settings.app_names).
        "app_names": c.settings.app_names,
    }
    try:
        me = await api_client.me(c.api, token)
    except api_client.ApiError as err:
        return page(request, "chain.html", err.status, me=None, api_error=err, **context)
    return page(request, "chain.html", me=me, api_error=None, **context)
