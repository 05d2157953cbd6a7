"""`make bench` works end to end (a smoke run with tiny counts), and what it reads from wrk is read right.

The figures themselves come from `make bench` and live in docs/performance.md, never from a timed test; the
smoke run checks only what holds at any speed: every target answered, nothing failed, and the steady state
asked the identity provider for no token.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from devtools.paths import repo_root
from devtools.perf.load import LoadError, parse

WRK = """Running 1s test @ http://localhost:9200/tasks
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms  512.00us   9.87ms   80.00%
  Latency Distribution
     50%    2.95ms
     75%    3.30ms
     90%    3.80ms
     99%    1.20s
  1234 requests in 1.00s, 2.00MB read
  Non-2xx or 3xx responses: 7
Requests/sec:   1233.50
Transfer/sec:      2.00MB
"""


def test_wrk_output_is_read_with_its_units() -> None:
    measured = parse(WRK)
    assert (measured.rps, measured.requests, measured.non_2xx) == (1233.5, 1234, 7)
    assert (measured.p50_ms, measured.p99_ms) == (2.95, 1200.0)
    with pytest.raises(LoadError):
        parse("wrk: connection refused")


PAGE = """<main>
  <form method="post" action="/tasks/{id}/complete"><input type="hidden" name="csrf_token" value="{token}"></form>
  <span class="meta">added <time datetime="{at}">{shown}</time></span>
</main>"""


def test_the_floor_must_render_the_web_apps_page_but_for_ids_times_and_tokens() -> None:
    from devtools.perf.run import page_difference

    real = PAGE.format(
        id="d6cf2cab-3c61-4c64-ac7b-1868b18c6d51", token="Nv-x_1", at="2026-12-03T10:29:01Z", shown="10:29"
    )
    same = PAGE.format(id="5b5f58c0-963a-4273-a29f-ca33a5160dfa", token="x" * 43, at="2026-12-03T10:28Z", shown="10:28")
    assert page_difference(real, same) is None
    lacking = same.replace("<main>", '<a href="/lab">Attack lab</a>\n<main>')
    assert page_difference(lacking, same) == '--- web\n+++ web floor\n@@ -1 +0,0 @@\n-<a href="/lab">Attack lab</a>'


@pytest.mark.live
def test_a_smoke_run_drives_every_target_and_asks_the_identity_provider_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    # A short path: PostgreSQL's socket path must fit in 107 bytes.
    local = Path(tempfile.mkdtemp(prefix="zb-", dir="/tmp"))
    env = {**os.environ, "ZT_LOCAL_DIR": str(local)}
    done = subprocess.run(
        [sys.executable, "-m", "devtools.cli", "bench", "--smoke", "--out", str(out)],
        cwd=repo_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    shutil.rmtree(local, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(out.read_text())
    chain = {"web", "api", "web floor", "api floor"}
    assert set(results["targets"]) == {*chain, *(f"{t} (postgres)" for t in chain), "api naive"}
    for name, by_connections in results["targets"].items():
        for measured in by_connections.values():
            assert measured["rps"] > 0 and measured["failed"] == 0, name
    assert results["steady_state"]["requests"] > 0
    assert results["steady_state"]["token_requests_per_1000"] == 0
    cpu = {name: by_connections["4"]["cpu_us"] for name, by_connections in results["targets"].items()}
    # Every tier a target passes through, each with its own figure (an idle one may show a clock tick or none).
    assert {"web", "api", "downstream-api"} <= set(cpu["web"]), cpu
    assert {"api", "downstream-api"} <= set(cpu["api"]) and "floor api" not in cpu["api"], cpu
    assert {"floor web", "floor api", "floor downstream"} <= set(cpu["web floor"]), cpu
    assert "CPU a request at 4 connections" in done.stdout
    validation = results["validation"]
    assert validation["cached_us"] < validation["full_us"]
    assert "ratios at" in done.stdout and "web / web floor" in done.stdout


def test_a_ratio_is_the_median_of_its_rounds_each_beside_its_floor() -> None:
    from devtools.perf.load import Measured
    from devtools.perf.report import table
    from devtools.perf.run import Target, _ratios, _round_ratios, _side_by_side

    def runs(*rps: float) -> dict[int, list[Measured]]:
        return {16: [Measured(r, 1.0, 2.0, 100, 0) for r in rps]}

    # The machine halves its speed in round 2: both slow alike, so that round's ratio stays the same.
    web, floor = Target("web", "", {}, runs=runs(80, 45, 95)), Target("web floor", "", {}, runs=runs(100, 50, 100))
    api, api_floor = Target("api", "", {}, runs=runs(60, 70, 20)), Target("api floor", "", {}, runs=runs(100, 80, 50))
    naive = Target("api naive", "", {}, runs=runs(10, 5, 20))
    targets = {t.name: t for t in (web, floor, api, api_floor, naive)}
    rounds = _round_ratios(targets)
    assert rounds == {"16": {"web / web floor": [0.8, 0.9, 0.95], "api / api floor": [0.6, 0.875, 0.4]}}
    medians = {t.name: {str(c): t.median(c) for c in t.runs} for t in targets.values()}
    ratios = _ratios(medians, rounds)["16"]
    # Not the ratio of the medians (80 / 100, 60 / 80): the median of the rounds' own ratios.
    assert ratios["web / web floor"] == 0.9 and ratios["api / api floor"] == 0.6
    assert ratios["api / api naive"] == 6.0  # measured apart: the medians' ratio
    assert [t.name for t in _side_by_side([web, api], [floor, api_floor])] == ["web", "web floor", "api", "api floor"]
    shown = table(
        {
            "targets": medians,
            "ratios": {"16": ratios},
            "round_ratios": rounds,
            "steady_state": {"requests": 1, "token_requests_per_1000": 0.0, "key_set_requests_per_1000": 0.0},
            "validation": {"cached_us": 1.0, "full_us": 100.0, "raw_rs256_us": 17.0},
            "seconds": 1.0,
        }
    )
    assert (
        "ratios at 16 connections: web / web floor 0.90x (rounds 0.80-0.95), "
        "api / api floor 0.60x (rounds 0.40-0.88), api / api naive 6.00x\n"
    ) in shown


def test_a_command_line_names_its_tier() -> None:
    from devtools.perf.cpu import tier_of

    assert tier_of(["/venv/bin/python3", "-m", "downstream_api"]) == "downstream-api"
    assert tier_of(["python3", "-m", "web"]) == "web"
    assert tier_of(["python3", "-m", "devtools.perf.floor", "api", "9301", "https://localhost:9302"]) == "floor api"
    assert tier_of(["python3", "-m", "devtools.perf.naive", "api"]) is None
    assert tier_of(["python3", "-m", "devtools.cli", "run"]) is None
    assert tier_of(["/usr/bin/wrk", "-t1", "-c16"]) is None
    assert tier_of(["python3", "-m"]) is None


_BURN = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()
started = time.process_time()
while time.process_time() - started < 0.2:
    pass
print("burnt", flush=True)
sys.stdin.read()
"""


@pytest.mark.live
def test_a_tiers_cpu_is_counted_per_request_and_only_for_the_benchs_own_processes() -> None:
    from devtools.perf.cpu import TierClock

    # Floor tiers' names: no other test's process (a live stack may be this worker's child) runs one here.
    ours = [sys.executable, "-c", _BURN, "-m", "devtools.perf.floor", "web"]
    # Another bench's tier, not a child of this process (its parent is the shell).
    theirs = [
        "/bin/sh",
        "-c",
        shlex.join([sys.executable, "-c", _BURN, "-m", "devtools.perf.floor", "api"]) + " <&0 & wait",
    ]
    started = [subprocess.Popen(c, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for c in (ours, theirs)]
    try:
        for process in started:  # both running, neither burning yet
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        clock = TierClock({os.getpid()})
        for process in started:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in started:
            assert process.stdout is not None and process.stdout.readline().strip() == "burnt"
        spent = clock.per_request_us(100)
    finally:
        for process in started:
            process.communicate("")
    # 0.2 s of CPU over 100 requests: 2,000 µs each (a clock tick is 10 ms: 1,900 at the least).
    assert "floor api" not in spent and 1_900 <= spent["floor web"] < 4_000, spent


def test_the_cpu_line_shows_each_tier_a_target_passes_through_in_chain_order() -> None:
    from devtools.perf.report import table

    cpu = {"downstream-api": 1338, "web": 1362, "api": 868, "floor web": 4}  # 4: an idle tier's clock tick
    results = {
        "targets": {"web": {"16": {"rps": 1.0, "p50_ms": 1.0, "p99_ms": 1.0, "failed": 0, "cpu_us": cpu}}},
        "ratios": {"16": {}},
        "steady_state": {"requests": 1, "token_requests_per_1000": 0.0, "key_set_requests_per_1000": 0.0},
        "validation": {"cached_us": 1.0, "full_us": 100.0, "raw_rs256_us": 17.0},
        "seconds": 1.0,
    }
    line = "CPU a request at 16 connections (µs, each tier's process): "
    assert line + "web: web 1,362, api 868, downstream-api 1,338\n" in table(results)


def test_a_target_that_met_a_429_fails_the_bench() -> None:
    from devtools.perf.report import refusals

    clean = {"targets": {"api": {"16": {"rps": 600.0, "failed": 0}}}}
    assert refusals(clean) == []
    tripped = {"targets": {"api": {"16": {"rps": 600.0, "failed": 0}, "32": {"rps": 580.0, "failed": 12}}}}
    assert refusals(tripped) == ["api at 32 connections: 12 answers were not 2xx (429: a rate limit tripped)"]


@pytest.mark.live
def test_the_instruction_count_runs_both_apps_in_process_and_refuses_unknown_layers() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "devtools.perf.instructions", *args]
        return subprocess.run(command, cwd=repo_root(), capture_output=True, text=True, timeout=120, check=False)

    done = run("--requests", "3", "--without", "audit,deactivation")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert [line.split(" us ")[0].rsplit(None, 1)[0] for line in lines] == [
        "downstream-api",
        "floor",
        "shaped floor",
    ] * 2
    refused = run("--without", "audit,tokens")
    assert refused.returncode == 2 and "--without a comma-separated choice of audit, span" in refused.stderr


@pytest.mark.live
def test_under_valgrind_the_real_app_counts_more_instructions_than_the_floor() -> None:
    command = [sys.executable, "-m", "devtools.perf.instructions", "--count", "--requests", "3"]
    done = subprocess.run(command, cwd=repo_root(), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    real, floor, shaped = (float(line.split("M instructions")[0].split()[-1]) for line in lines[1:4])
    # Millions of instructions a request: every check costs some, and so does FastAPI's work for the route's shape.
    assert real > shaped > floor > 0.5
    assert lines[-2].startswith("ratio: downstream-api does ") and lines[-1].startswith("of which FastAPI's")
