"""One api + downstream-api chain against the session's emulator, shared by the authorization tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from devtools.testing import LiveEmulator

from tests.authz.chain import Chain, start_chain
from tests.conftest import LiveService


@pytest.fixture(scope="session")
def chain(
    live: LiveEmulator, start_service: Callable[..., LiveService], tmp_path_factory: pytest.TempPathFactory
) -> Chain:
    return start_chain(live, start_service, tmp_path_factory.mktemp("authz-chain"))
