"""`make run` as a person uses it: Ctrl-C leaves no process behind; a second run reuses keys and data."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.support.launch import MAKE_RUN_STACK_OFFSET, alive, children_of, start_stack

OFFSET = MAKE_RUN_STACK_OFFSET


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.live
def test_ctrl_c_stops_everything_and_a_second_run_reuses_keys_and_data(tmp_path: Path) -> None:
    ports = [8000 + OFFSET, 8001 + OFFSET, 8002 + OFFSET, 8443 + OFFSET, 8444 + OFFSET]
    first = start_stack(tmp_path, OFFSET, ["make", "--no-print-directory", "-s", "run", f"PORT_OFFSET={OFFSET}"])
    assert all(_listening(p) for p in ports)
    runner = first.info["runner_pid"]
    services = children_of(runner)
    assert len(services) == 4
    password = first.info["demo_password"]
    keys = sorted(p.name for p in (tmp_path / "emulator" / "signing-keys").glob("*.pem"))
    ca = (tmp_path / "tls" / "ca.pem").read_bytes()

    os.killpg(first.process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends: the whole group
    first.process.wait(30)
    assert not [pid for pid in [runner, *services] if alive(pid)]
    assert not [p for p in ports if _listening(p)]
    assert not (tmp_path / "stack.json").exists()

    second = start_stack(tmp_path, OFFSET)
    try:
        assert second.info["demo_password"] == password
        assert sorted(p.name for p in (tmp_path / "emulator" / "signing-keys").glob("*.pem")) == keys
        assert (tmp_path / "tls" / "ca.pem").read_bytes() == ca
        assert (tmp_path / "downstream" / "records.db").exists()
        with httpx.Client(timeout=5) as client:
            assert client.get(f"{second.web}/healthz").json() == {"status": "ok"}
    finally:
        second.process.send_signal(signal.SIGTERM)
        second.process.wait(30)
    assert not [p for p in ports if _listening(p)]
