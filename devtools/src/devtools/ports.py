"""Ports for the processes tests and tools start, below 32768.

Linux hands out ports from 32768 up to outgoing connections: a port found by binding 0 and released is in
that range and can be taken by any connection before the service binds it (seen here: a test's emulator
failed with "address already in use"). Below 32768 only listeners take ports, so a port found free here
stays free unless another test run takes it: each pytest-xdist worker counts through a block of its own,
and two runs on one machine keep apart with ZT_PORT_BASE (24000 by default; 28000 for a second clone,
say) and ZT_STACK_OFFSET for their whole stacks.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading

BLOCK = 1500
DEFAULT_BASE = 24000
HIGHEST = 32767
# Whole stacks (`zt run --port-offset N`) listen on 8000-8444 plus N; each xdist worker's stacks take
# offsets of their own, counted up from here (worker 0: ports 18000-20944, worker 1: 21000-23944, below
# the blocks free_port counts through).
STACK_OFFSET = 10000
STACK_OFFSETS_PER_WORKER = 6
STACK_OFFSET_STEP = 500

_lock = threading.Lock()
_next: itertools.count[int] | None = None


def worker() -> int:
    """This pytest-xdist worker's number (gw0 -> 0), or 0 outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name.removeprefix("gw")) if name.removeprefix("gw").isdigit() else 0


def block_start() -> int:
    start = int(os.environ.get("ZT_PORT_BASE", str(DEFAULT_BASE))) + worker() * BLOCK
    if start + BLOCK > HIGHEST:
        raise RuntimeError(f"ZT_PORT_BASE leaves worker {worker()} no ports below 32768")
    return start


def bindable(port: int) -> bool:
    """Nothing listens on `port` on 127.0.0.1."""
    with socket.socket() as sock:
        # SO_REUSEADDR: a port in TIME_WAIT from an earlier test is free to bind; a live listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """The next port of this worker's block that nothing listens on."""
    global _next
    with _lock:
        if _next is None:
            _next = itertools.count(block_start())
        for _ in range(BLOCK):
            port = next(_next)
            if port >= block_start() + BLOCK:
                _next = itertools.count(block_start())
                port = next(_next)
            if bindable(port):
                return port
    raise RuntimeError(f"no free port in {block_start()}-{block_start() + BLOCK - 1}")


def stack_offset(index: int = 0) -> int:
    """The `zt run --port-offset` for this worker's `index`-th stack."""
    if not 0 <= index < STACK_OFFSETS_PER_WORKER:
        raise ValueError(f"a worker has {STACK_OFFSETS_PER_WORKER} stack offsets")
    base = int(os.environ.get("ZT_STACK_OFFSET", str(STACK_OFFSET)))
    return base + (worker() * STACK_OFFSETS_PER_WORKER + index) * STACK_OFFSET_STEP
