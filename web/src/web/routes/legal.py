"""The terms of service and privacy statement the app registrations link (info.terms_of_service_url,
info.privacy_statement_url in infra/registrations.yaml): the consent prompt shows them to people.

# zt: app-registration
Public pages: someone deciding whether to consent reads them before signing in.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..dependencies import OptionalSession
from ..pages import page

router = APIRouter(tags=["legal"])


@router.get("/terms")
async def terms(request: Request, session: OptionalSession) -> Response:
    return page(request, "terms.html")


@router.get("/privacy")
async def privacy(request: Request, session: OptionalSession) -> Response:
    return page(request, "privacy.html")
