"""Deny by default: every route but /healthz validates the token and checks a permission."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from downstream_api.main import create_app
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute
from zerotrust.dependencies import CurrentPrincipal, current_principal

PUBLIC = {"/healthz"}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def unguarded(routes: list[BaseRoute]) -> list[str]:
    """Routes (method path) that are not public and lack token validation or a permission check."""
    problems = []
    # Route contexts: each route as served, with the prefix and the dependencies of the routers
    # that include it (FastAPI keeps included routers as their own route objects).
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute):
            # Mounts, docs pages, plain Starlette routes: none may exist, they bypass dependencies.
            problems.append(f"{type(route.original_route).__name__} {route.path}")
            continue
        if route.path in PUBLIC:
            continue
        calls = list(_calls(route.dependant))
        validated = current_principal in calls
        permission = any(c.__qualname__.startswith(("require_scopes.", "require_app_roles.")) for c in calls)
        if not (validated and permission):
            problems.append(f"{sorted(route.methods or ())} {route.path}")
    return problems


def served_paths(app: FastAPI) -> set[str]:
    return {str(r.path) for r in iter_route_contexts(app.routes)}


def test_every_route_but_healthz_requires_a_token_and_a_permission() -> None:
    app = create_app()
    assert served_paths(app) == {"/healthz", "/me", "/records", "/records/{record_id}"}
    assert unguarded(app.routes) == []


def test_the_check_catches_an_unguarded_route() -> None:
    app = create_app()

    @app.get("/records/export")
    async def export() -> list[str]:
        return []

    @app.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> str:  # validated, but no permission checked
        return principal.oid

    app.mount("/files", FastAPI())
    assert unguarded(app.routes) == ["['GET'] /records/export", "['GET'] /whoami", "Mount /files"]


def test_no_docs_or_schema_are_served() -> None:
    app = create_app()
    assert app.openapi_url is None and app.docs_url is None and app.redoc_url is None
