"""The emulator's home page: what it stands for (Microsoft Entra ID) and where its endpoints are.

A person who opens http://localhost:8444/ gets a page, not a bare JSON 404: a dev/test-only banner, the real
service each part plays, and links to the discovery documents, the signing keys and the admin view. Every
other unknown path keeps Entra's JSON 404, which is what programs read.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from .forms import emulator
from .pages import page

router = APIRouter()


@router.get("/", response_class=HTMLResponse, tags=["pages"])
async def home(request: Request) -> HTMLResponse:
    emu = emulator(request)
    d = emu.directory
    tenants = sorted(d.tenants.values(), key=lambda t: t.tenant_id != d.home_tenant_id)
    return page(
        request,
        "home.html",
        tenants=tenants,
        home_tenant_id=d.home_tenant_id,
        front=emu.settings.front_base,
        back=emu.settings.issuer_base,
    )
