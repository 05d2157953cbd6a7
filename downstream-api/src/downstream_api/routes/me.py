"""GET /me: the caller as this tier validated it (the end of the identity-through-the-chain page)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..auth import RecordsReader

router = APIRouter(tags=["identity"])


@router.get("/me")
async def me(principal: RecordsReader) -> dict[str, Any]:
    # The same user the web app signed in, seen through an on-behalf-of token: tenant and object id
    # unchanged, a different pairwise subject, the api as the calling app, Records.* scopes.
    return principal.view()
