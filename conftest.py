"""Workspace-wide pytest setup: which tests are `live`, and how the suite shares two cores.

A test is `live` when it starts processes (an emulator, a service, a whole stack, PostgreSQL, Chromium):
it is marked so here from the fixtures it uses, so `pytest -m "not live"` is a true in-process subset, and
any other test that tries to start a process fails, naming the fix. Under pytest-xdist (`make test` runs
two workers), a test that shares a session-wide process (a stack) is grouped with the others that do, so
that process starts once, on one worker; a module's own processes keep its tests together likewise.
"""

from __future__ import annotations

import importlib
import platform
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

# Under --import-mode=importlib, pytest names a test file by its path from the repo root
# (devtools/tests/test_x.py -> devtools.tests.test_x) and, if `devtools` is not imported yet,
# binds the `devtools/` member directory as a namespace package of that name, hiding the real
# package (pytest issue #13257). Importing each member whose directory shares its package's
# name first makes pytest reuse the real package instead.
for _package in ("zerotrust", "web", "api", "devtools"):
    importlib.import_module(_package)
# azure-identity asks for the processor name at import, which Python finds by running `uname -p` once and
# caching it: asked here, before any test runs, so the in-process tests' guard below sees no process.
platform.processor()

# Fixtures that start processes. A test using one (directly or through another fixture) is live.
PROCESS_FIXTURES = frozenset(
    {
        "live",
        "fresh_emulator",
        "emulator_factory",
        "start_service",
        "web_factory",
        "stack",
        "consent_stack",
        "app_only_stack",
        "key_lab",
        "pg",
        "pg_stack",
        "pg_factory",
        "pg_cluster",
        "chromium",
        "redis_server",
    }
)


# Processes a whole run shares: the tests that use one go to one worker together, so it starts once.
SHARED_PROCESSES = ("stack", "consent_stack", "key_lab")


def _process_fixtures(item: pytest.Item) -> list[Any]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    return [defs[-1] for name, defs in info.name2fixturedefs.items() if name in PROCESS_FIXTURES and defs]


def _module_fixtures(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    return any(d and d[-1].scope in ("module", "package") for d in defs)


def _uses_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("backend") == "postgres"


def _uses_redis(item: pytest.Item) -> bool:
    # A store fixture parametrized over the session stores starts Redis for its "redis" case only.
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("store") == "redis"


# Before pytest-xdist's own hook, which turns xdist_group marks into the groups it schedules by.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = _process_fixtures(item)
        if fixtures or _uses_postgres(item) or _uses_redis(item):
            item.add_marker(pytest.mark.live)
        if item.get_closest_marker("xdist_group") is not None:
            continue
        shared = [name for name in SHARED_PROCESSES if name in item.fixturenames]
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))
        elif item.get_closest_marker("live") is not None and _module_fixtures(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private redis-server (devtools.redis_server) on one of this worker's ports, for the session."""
    from devtools.ports import free_port
    from devtools.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port()).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _processes_only_when_live(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("live") is None:

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError(
                f"{request.node.nodeid} starts a process but is not a live test: use a live fixture "
                "(conftest.PROCESS_FIXTURES) or mark it @pytest.mark.live, so `-m 'not live'` stays in process"
            )

        monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    yield
