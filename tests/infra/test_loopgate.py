"""The compose stack's gate relays a published port to loopback, bytes unchanged both ways, and its probes
say ready only when what they check is there. In process: the gate listens on 127.0.0.2, never a network."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools.entratoken import AccessTokenChecker
from devtools.ports import free_port
from devtools.redis_front import REDIS_AUDIENCE, RedisFront, server_context
from devtools.tls import ensure_dev_tls

from devtools import loopgate, probe

pytestmark = pytest.mark.guidance("secure-devops-platform-environment-zero-trust")

GATE = "127.0.0.2"


@pytest.fixture
def upstream() -> Iterator[int]:
    """A loopback service that reads until the client has sent everything, then answers with what it got."""
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                conn.sendall(b"got " + str(len(data)).encode() + b" " + data[:16])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    server.shutdown(socket.SHUT_RDWR)  # wakes the accept (Linux); close alone may leave it waiting
    server.close()
    thread.join(5)


@pytest.fixture
def gate(upstream: int) -> Iterator[int]:
    loop = asyncio.new_event_loop()
    ready = asyncio.Event()
    task: asyncio.Task[None] | None = None

    def run() -> None:
        nonlocal task
        asyncio.set_event_loop(loop)
        task = loop.create_task(loopgate.serve([GATE], [upstream], ready))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)

    # serve() installs signal handlers, which only the main thread may: give it a loop that ignores them.
    loop.add_signal_handler = lambda *_args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(asyncio.wait_for(ready.wait(), 10), loop).result(15)
    yield upstream
    loop.call_soon_threadsafe(lambda: task.cancel() if task else None)
    thread.join(10)
    loop.close()


def test_the_gate_relays_both_ways_and_keeps_the_half_closed_answer(gate: int) -> None:
    body = b"x" * 300_000  # several reads' worth
    with socket.create_connection((GATE, gate), timeout=10) as sock:
        sock.sendall(body)
        sock.shutdown(socket.SHUT_WR)  # the client is done sending; the answer must still come back
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer == b"got 300000 " + b"x" * 16


def test_the_gate_answers_a_closed_connection_when_nothing_listens_behind_it() -> None:
    port = free_port()
    loop = asyncio.new_event_loop()
    try:
        reader_writer = loop.run_until_complete(_relay_once(port))
    finally:
        loop.close()
    assert reader_writer == b""


async def _relay_once(port: int) -> bytes:
    server = await asyncio.start_server(lambda r, w: loopgate._relay(port, r, w), GATE, port)
    async with server:
        reader, writer = await asyncio.open_connection(GATE, port)
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return data


def test_the_gate_refuses_the_services_own_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert loopgate.main(["8000", "--address", "127.0.0.1"]) == 2
    assert "where the services listen" in capsys.readouterr().err


def test_the_probes_say_ready_only_when_it_is(tmp_path: Path, upstream: int) -> None:
    assert probe.holds(f"tcp:{upstream}")
    assert not probe.holds(f"tcp:{free_port()}")
    assert not probe.holds(f"redis:{upstream}")  # accepts, but is no Redis: no +PONG
    assert not probe.holds(f"file:{tmp_path / 'ready'}")
    (tmp_path / "ready").write_text("8432")
    assert probe.main([f"file:{tmp_path / 'ready'}", f"tcp:{upstream}"]) == 0
    assert probe.main([f"tcp:{free_port()}"]) == 1


def test_the_redis_front_probe_wants_its_tls_and_its_refusal(tmp_path: Path, upstream: int) -> None:
    tls = ensure_dev_tls(tmp_path)
    # No token is ever checked here (nor a key set fetched): the probe's PING comes before any AUTH.
    checker = AccessTokenChecker(authority="https://localhost:1/tenant", audience=REDIS_AUDIENCE)
    front = RedisFront(
        checker, {}, backend_port=free_port(), password_file=tmp_path / "none", tls=server_context(tls)
    ).start()
    try:
        assert probe.holds(f"rediss:{front.port}:{tls.ca_bundle}")
        other_ca = ensure_dev_tls(tmp_path / "other").ca_bundle
        assert not probe.holds(f"rediss:{front.port}:{other_ca}")  # a front this CA did not certify
    finally:
        front.stop()
    assert not probe.holds(f"rediss:{upstream}:{tls.ca_bundle}")  # accepts, but speaks no TLS
    assert not probe.holds(f"rediss:{free_port()}:{tls.ca_bundle}")
    assert probe.main([f"rediss:{front.port}"]) == 2  # no CA: not a probe


def test_a_probe_that_is_not_one_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert probe.main(["http:8000"]) == 2
    assert "is not a probe (tcp:PORT, redis:PORT, rediss:PORT:CA_FILE, file:PATH, gate:PORT)" in capsys.readouterr().err
