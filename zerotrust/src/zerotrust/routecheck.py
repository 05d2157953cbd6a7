"""Deny by default, checked: list the routes that would answer without a validated token and a
permission check. Each API's tests assert the list is empty, so a new route can't ship open."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from .protect import permissions_of


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


# region quote: unguarded-routes
def unguarded_routes(routes: list[BaseRoute], public: Iterable[str] = ("/healthz",)) -> list[str]:
    """Routes (methods and path) that are not public and lack a permission check (which validates the token)."""
    public = set(public)
    problems = []
    # Route contexts: each route as served, with the prefix and the dependencies of the routers
    # that include it (FastAPI keeps included routers as their own route objects).
    for route in iter_route_contexts(routes):
        if route.path in public:
            continue
        if not isinstance(route.original_route, APIRoute):
            # Mounts and plain Starlette routes bypass dependencies: only listed public ones may exist.
            problems.append(f"{type(route.original_route).__name__} {route.path}")
            continue
        if not any(permissions_of(call) for call in _calls(route.dependant)):
            problems.append(f"{sorted(route.methods or ())} {route.path}")
    return problems


# endregion


def served_paths(routes: list[BaseRoute]) -> set[str]:
    return {str(r.path) for r in iter_route_contexts(routes)}
