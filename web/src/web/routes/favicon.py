"""The favicon: an SVG in static/, linked from every page; /favicon.ico answers with the same file for the
browsers and tools that ask there without reading the page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(tags=["static"])

FAVICON = Path(__file__).parents[1] / "static" / "favicon.svg"


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    return FileResponse(FAVICON, media_type="image/svg+xml")
