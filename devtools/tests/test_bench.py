"""`zt bench` runs end to end and reports what it measured: both clients, per-request CPU, the ratios.

Not a timed test: no figure is asserted, only that each was measured (positive) and printed.
"""

from __future__ import annotations

import os
import re

import pytest
from devtools.bench import run
from devtools.cli import main


@pytest.mark.live
def test_bench_measures_both_clients_and_prints_their_ratios() -> None:
    trusted = os.environ.get("SSL_CERT_FILE")
    lines: list[str] = []
    results = run(requests=60, concurrency=4, out=lines.append)
    assert [m.client for m in results] == ["aiohttp (zerotrust.hops)", "httpx.AsyncClient"]
    assert all(m.requests == 60 and m.cpu_seconds > 0 and m.wall_seconds > 0 for m in results)
    assert lines[0].startswith("60 GET requests over HTTPS on loopback, 4 at a time")
    assert any(line.startswith("aiohttp (zerotrust.hops)") for line in lines)
    assert re.fullmatch(
        r"ratio: httpx uses [\d.]+x the CPU of aiohttp per request; aiohttp serves [\d.]+x .*", lines[-1]
    )
    assert os.environ.get("SSL_CERT_FILE") == trusted  # the run's own CA bundle went with it


def test_bench_refuses_a_count_that_is_no_positive_number() -> None:
    for bad in ("0", "-3", "many"):
        try:
            main(["bench-clients", "--requests", bad])
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(f"--requests {bad} was accepted")
