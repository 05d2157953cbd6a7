"""The e2e tests' own chain: api and downstream-api on an emulator of their own that provisions the api."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devtools.ports import free_port

from tests.authz.chain import Chain
from tests.support.launch import LiveEmulator, LiveService, ready, spawn, start_emulator


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, live: LiveEmulator) -> Iterator[Chain]:
    """api and downstream-api on an emulator of their own that provisions the api (SCIM)."""
    tmp_path = tmp_path_factory.mktemp("cae-chain")
    local = tmp_path / "local"
    local.mkdir()
    (local / "tls").symlink_to(live.local_dir / "tls")
    api_port, downstream_port = free_port(), free_port()
    emulator = start_emulator(local, scim_url=f"https://localhost:{api_port}/scim/v2")
    services: list[LiveService] = []
    try:
        logs = tmp_path / "logs"
        services.append(
            spawn(
                "downstream_api",
                "DOWNSTREAM",
                {"port": str(downstream_port), "state_dir": str(tmp_path / "downstream")},
                emulator=emulator,
                log_dir=logs,
                identity="downstream-api",
            )
        )
        services.append(
            spawn(
                "api",
                "API",
                {"port": str(api_port), "downstream_url": f"https://localhost:{downstream_port}"},
                emulator=emulator,
                log_dir=logs,
                identity="api",
            )
        )
        ready(*services)
        yield Chain(emulator, services[1], services[0])
    finally:
        for service in services:
            service.stop()
        emulator.stop()
