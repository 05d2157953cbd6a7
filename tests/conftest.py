"""Fixtures for cross-service tests: a live identity emulator over real HTTPS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.testing import LiveEmulator, start_emulator
from devtools.tls import ca_env


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
