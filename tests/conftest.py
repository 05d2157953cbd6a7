"""Fixtures for cross-service tests: emulators, tiers and stacks in their own processes (tests/support/launch.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devtools.tls import ca_env

from tests.support.launch import (
    CONSENT_STACK_OFFSET,
    LiveEmulator,
    LiveService,
    RunningStack,
    launch_service,
    start_emulator,
    start_stack,
    start_web,
)
from tests.support.redis import RedisFrontStack, start_redis_front


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveEmulator]:
    """One emulator for the whole session; tests that change directory state use `fresh_emulator`."""
    emulator = start_emulator(tmp_path_factory.mktemp("local"))
    # MSAL and azure-identity in this process talk https to it: trust the dev CA the way the
    # services do, through the environment, not by switching verification off.
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ.update(ca_env(emulator.tls))
    yield emulator
    emulator.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def fresh_emulator(tmp_path: Path, live: LiveEmulator) -> Iterator[LiveEmulator]:
    """An emulator of its own, for tests that disable users, revoke sessions or rotate keys."""
    local = tmp_path / "local"
    local.mkdir()
    # Same dev CA as the session emulator, so the process-wide CA bundle trusts both.
    (local / "tls").symlink_to(live.local_dir / "tls")
    emulator = start_emulator(local)
    yield emulator
    emulator.stop()


@pytest.fixture
def emulator_factory(tmp_path: Path, live: LiveEmulator) -> Iterator[Callable[..., LiveEmulator]]:
    """Emulators of their own with non-default settings, e.g. `emulator_factory(code_lifetime="0")`.

    Each gets its own state and ports but the session's dev CA, as `fresh_emulator` does.
    """
    started: list[LiveEmulator] = []

    def start(**settings: str) -> LiveEmulator:
        local = tmp_path / f"local-{len(started)}"
        local.mkdir()
        (local / "tls").symlink_to(live.local_dir / "tls")
        started.append(start_emulator(local, **settings))
        return started[-1]

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture(scope="session")
def start_service(live: LiveEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveService]]:
    """`start_service("downstream_api", "DOWNSTREAM", {...}, emulator=live)`: a tier as a subprocess
    over HTTPS, trusting the session's dev CA; stopped at the end of the session if not before."""
    started: list[LiveService] = []
    log_dir = tmp_path_factory.mktemp("service-logs")

    def start(
        module: str, env_prefix: str, env: dict[str, str], *, emulator: LiveEmulator | None = None, timeout: float = 30
    ) -> LiveService:
        service = launch_service(module, env_prefix, env, emulator=emulator or live, log_dir=log_dir, timeout=timeout)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def web_factory(tmp_path: Path, live: LiveEmulator) -> Iterator[Callable[..., LiveService]]:
    """`web_factory(api_url=..., **other WEB_ settings)`: start_web against the session's emulator."""
    started: list[LiveService] = []

    def start(**settings: str) -> LiveService:
        web = start_web(live, tmp_path / f"web-{len(started)}", **settings)
        started.append(web)
        return web

    yield start
    for web in started:
        web.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(30)


@pytest.fixture(scope="session")
def consent_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A second stack for tests that change consent (a user's, or an administrator's tenant-wide):
    what a person is asked depends on what was granted before, so these tests don't share `stack`."""
    running = start_stack(tmp_path_factory.mktemp("consent-stack"), CONSENT_STACK_OFFSET)
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(30)


@pytest.fixture
def redis_front(live: LiveEmulator, redis_server: Any) -> Iterator[RedisFrontStack]:
    """The session's private Redis behind a token front of its own (its clock, its counters) that checks the
    session emulator's tokens; the store emptied first."""
    stack = start_redis_front(redis_server, live.tls, live.authority())
    stack.clear()
    yield stack
    stack.stop()
