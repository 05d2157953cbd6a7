"""Deny by default: every route but /healthz validates the token and checks a permission."""

from __future__ import annotations

from typing import Annotated

from downstream_api.dependencies import protect
from downstream_api.main import create_app
from fastapi import Depends, FastAPI
from starlette.routing import BaseRoute
from zerotrust.routecheck import served_paths as _served
from zerotrust.routecheck import unguarded_routes
from zerotrust.tokens import Principal

PUBLIC = {"/healthz"}


def unguarded(routes: list[BaseRoute]) -> list[str]:
    return unguarded_routes(routes, PUBLIC)


def served_paths(app: FastAPI) -> set[str]:
    return _served(app.routes)


def test_every_route_but_healthz_requires_a_token_and_a_permission() -> None:
    app = create_app()
    assert served_paths(app) == {
        "/healthz",
        "/me",
        "/me/groups",
        "/records",
        "/records/shared",
        "/records/{record_id}",
        "/records/{record_id}/share",
        "/org/records",
        "/admin/records/summary",
        "/reports/tenant",
        "/users",
        "/users/{user_id}",
    }
    assert unguarded(app.routes) == []


def test_the_check_catches_an_unguarded_route() -> None:
    app = create_app()

    @app.get("/records/export")
    async def export() -> list[str]:
        return []

    @app.get("/whoami")
    async def whoami(
        principal: Annotated[Principal, Depends(protect.principal)],
    ) -> str:  # validated, but no permission checked
        return principal.oid

    app.mount("/files", FastAPI())
    assert unguarded(app.routes) == ["['GET'] /records/export", "['GET'] /whoami", "Mount /files"]


def test_no_docs_or_schema_are_served() -> None:
    app = create_app()
    assert app.openapi_url is None and app.docs_url is None and app.redoc_url is None
