"""Home: the tour of the guidance, the three principles, the request chain and who is signed in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..dependencies import OptionalSession
from ..pages import page, served_paths
from ..tour import PRINCIPLES, load_tour

router = APIRouter(tags=["tour"])


# zt: identity-zero-trust-compliance
@router.get("/")
async def home(request: Request, session: OptionalSession) -> Response:
    # A live link is shown only where this deployment serves it (the attack lab runs only locally).
    return page(request, "tour.html", tour=load_tour(), principles=PRINCIPLES, served=served_paths(request))
