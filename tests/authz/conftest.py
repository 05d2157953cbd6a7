"""One api + downstream-api chain, on an emulator of its own, shared by the authorization tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.authz.chain import Chain, start_chain
from tests.support.launch import LiveEmulator, LiveService, start_emulator


@pytest.fixture(scope="session")
def chain(
    live: LiveEmulator, start_service: Callable[..., LiveService], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    """Its own emulator, because contoso's administrator has consented tenant-wide to the web app
    on the api here (combined consent: the api's Records.Read.All downstream too), as a tenant
    using the organization view has; the session's emulator keeps showing "Need admin approval"."""
    local = tmp_path_factory.mktemp("authz-chain")
    (local / "tls").symlink_to(live.local_dir / "tls")  # the session's dev CA, trusted process-wide
    emulator = start_emulator(local)
    try:
        emulator.admin("consent/grant", tenant="contoso", client="web", resource="api")
        yield start_chain(emulator, start_service, local)
    finally:
        emulator.stop()
