"""Child processes for tools and tests: wait until one answers on its health URL, stop one without leaving it
behind."""

from __future__ import annotations

import collections
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


TAIL_LINES = 40


@dataclass
class Child:
    """A supervised service's process, its output relayed line by line and its last lines kept."""

    service: Any  # devtools.supervisor.Service
    proc: subprocess.Popen[bytes]
    log: Callable[[str], None]
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    healthy: bool = False
    reader: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            self.tail.append(line)
            self.log(f"[{self.service.name}] {line}")

    def settle(self) -> None:
        # The process has exited, but its last lines may still be in the pipe; let the reader drain it.
        self.reader.join(timeout=2.0)

    def tail_text(self) -> str:
        lines = "".join(f"\n  | {line}" for line in self.tail)
        return (
            f"\n  last output of {self.service.name}:{lines}" if lines else f"\n  ({self.service.name} printed nothing)"
        )
