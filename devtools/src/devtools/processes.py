"""Child processes for tools and tests: wait until one answers on its health URL, stop one without leaving it
behind."""

from __future__ import annotations

import ssl
import subprocess
import time
from pathlib import Path

import httpx


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a bounded wait for a clean exit, then SIGKILL: a test never leaves a process behind."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(
    proc: subprocess.Popen[bytes], url: str, ca_bundle: Path, log_path: Path, name: str, timeout: float = 30
) -> None:
    """Poll `url` until it answers 200; fail with the child's own output if it exits or never does."""
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=ssl.create_default_context(cafile=ca_bundle), timeout=2, trust_env=False) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{name} not healthy after {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
