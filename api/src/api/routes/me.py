"""The caller as the api sees it, and as downstream-api sees the same user: identity through the chain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..auth import Reader
from ..downstream import DownstreamError
from .tasks import DownstreamDep

router = APIRouter(tags=["identity"])


@router.get("/me")
async def me(user: Reader, down: DownstreamDep) -> dict[str, Any]:  # zt: api-calls-api
    try:
        _, downstream_view = await down.call("GET", "/me")
    except DownstreamError as exc:
        downstream_view = exc.body()
    return {"api": user.view(), "downstream_api": downstream_view}
