"""The emulator binds loopback only: anything else is refused before a socket is opened."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from identity_emulator.settings import EmulatorSettings
from pydantic import ValidationError


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", ""])
def test_non_loopback_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValidationError, match="loopback only"):
        EmulatorSettings(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert EmulatorSettings(host=host).host == host


@pytest.mark.live
def test_starting_on_all_interfaces_fails_with_a_clear_message() -> None:
    env = {**os.environ, "EMULATOR_HOST": "0.0.0.0"}
    done = subprocess.run(
        [sys.executable, "-m", "identity_emulator"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "EMULATOR_HOST" in done.stderr and "binds loopback only" in done.stderr
    assert "Traceback" not in done.stderr
