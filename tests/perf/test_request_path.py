"""What each request pays FastAPI for: no thread hop for work that waits on nothing, one dependency per need.

FastAPI runs a plain `def` endpoint or dependency (and a class used as one) in a worker thread: under load
each such hop costs more CPU than the tier's checks. Work that waits on the disk or a database runs in a
thread on purpose (downstream-api's units of work, MSAL's network calls) and is called from async code,
so it never shows here. And each dependency node costs FastAPI tens of microseconds under load, so the
checks call what they need themselves (zerotrust.protect, web.dependencies) and a route declares only its needs;
each query parameter declared costs about as much as a node, and each route tried before the one that matches
some ~19k instructions (make bench-instructions measures such things).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from api.main import create_app as create_api
from api.settings import Settings as ApiSettings
from downstream_api.main import create_app as create_downstream
from downstream_api.settings import Settings as DownstreamSettings
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from web.main import create_app as create_web
from web.settings import Settings as WebSettings


def _is_async(call: Any) -> bool:
    while isinstance(call, functools.partial):
        call = call.func
    if inspect.isclass(call):
        return False  # FastAPI instantiates a class dependency in a worker thread
    target = call if inspect.isroutine(call) else getattr(call, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def _sync_calls(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call is not None and not _is_async(sub.call):
            yield f"{getattr(sub.call, '__module__', '?')}.{getattr(sub.call, '__qualname__', repr(sub.call))}"
        yield from _sync_calls(sub)


def _hops(app: FastAPI) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            calls = list(_sync_calls(route.dependant))
            if not _is_async(route.endpoint):
                calls.append(f"{route.endpoint.__module__}.{route.endpoint.__qualname__} (the endpoint)")
            if calls:
                found[f"{sorted(route.methods or ['?'])[0]} {context.path_format}"] = sorted(set(calls))
    return found


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: create_web(WebSettings()), id="web"),
        pytest.param(lambda: create_api(ApiSettings()), id="api"),
        pytest.param(lambda: create_downstream(DownstreamSettings()), id="downstream-api"),
    ],
)
def test_no_route_hops_to_a_worker_thread_for_work_that_waits_on_nothing(make: Any) -> None:
    assert _hops(make()) == {}, "make these `async def` (they wait on nothing), or await the blocking part in a thread"


def _nodes(dependant: Dependant) -> int:
    return sum(1 + _nodes(sub) for sub in dependant.dependencies)


def _route(app: FastAPI, method: str, path: str) -> APIRoute:
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path_format == path and method in (route.methods or ()):
            return route
    raise AssertionError(f"no {method} {path}")


@pytest.mark.parametrize(
    ("make", "path", "needs"),
    [
        # the clients (the page's api session) and the api token (which reads and confirms the session)
        pytest.param(lambda: create_web(WebSettings()), "/tasks", 2, id="web"),
        # the permission check, the on-behalf-of hop, the page asked for
        pytest.param(lambda: create_api(ApiSettings()), "/tasks", 3, id="api"),
        # the permission check (and the deactivation check), the database, the page asked for
        pytest.param(lambda: create_downstream(DownstreamSettings()), "/records", 3, id="downstream-api"),
    ],
)
def test_the_chains_own_route_resolves_one_dependency_per_need(make: Any, path: str, needs: int) -> None:
    assert _nodes(_route(make(), "GET", path).dependant) == needs


def _query_parameters(dependant: Dependant) -> int:
    return len(dependant.query_params) + sum(_query_parameters(sub) for sub in dependant.dependencies)


@pytest.mark.parametrize(
    ("make", "path", "declared"),
    [
        # the page of tasks asked for (?page=), checked by its pattern
        pytest.param(lambda: create_web(WebSettings()), "/tasks", 1, id="web"),
        # $top and $skiptoken are read by zerotrust.paging itself (and documented by zerotrust.openapi)
        pytest.param(lambda: create_api(ApiSettings()), "/tasks", 0, id="api"),
        pytest.param(lambda: create_downstream(DownstreamSettings()), "/records", 0, id="downstream-api"),
    ],
)
def test_the_chains_own_route_declares_no_query_parameter_it_can_read_itself(
    make: Any, path: str, declared: int
) -> None:
    assert _query_parameters(_route(make(), "GET", path).dependant) == declared


@pytest.mark.parametrize(
    ("make", "path"),
    [
        pytest.param(lambda: create_web(WebSettings()), "/tasks", id="web"),
        pytest.param(lambda: create_api(ApiSettings()), "/tasks", id="api"),
        pytest.param(lambda: create_downstream(DownstreamSettings()), "/records", id="downstream-api"),
    ],
)
def test_the_chains_own_route_is_the_first_each_app_tries(make: Any, path: str) -> None:
    tried = [
        (sorted(getattr(c.original_route, "methods", None) or ["*"])[0], c.path_format)
        for c in iter_route_contexts(make().routes)
    ]
    assert tried[0] == ("GET", path)
    assert ("GET", "/healthz") in tried[1:]  # the platform's probe still answers, after the service's routes


def _sync_dependency() -> int:
    return 1


class _ClassDependency:
    pass


def test_the_check_finds_a_plain_def_dependency_a_class_and_an_endpoint() -> None:
    from fastapi import Depends

    app = FastAPI()

    @app.get("/sync")
    def sync_endpoint(n: int = Depends(_sync_dependency), c: _ClassDependency = Depends()) -> int:
        return n

    [(route, calls)] = _hops(app).items()
    assert route == "GET /sync"
    names = [c.rsplit(".", 1)[-1] for c in calls]
    assert names == ["_ClassDependency", "_sync_dependency", "sync_endpoint (the endpoint)"]
