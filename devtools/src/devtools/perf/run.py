"""`make bench`: what Zero Trust costs the chain, as ratios measured side by side in one run.

The real stack (as `make run` starts it), a floor (perf/floor.py: the same hops with no auth) and a naive
build (perf/naive.py: the same checks done the slow way) are driven by wrk on loopback in interleaved
rounds, each target right beside its floor, so a machine that slows down mid-run slows both alike; a ratio
is the median of the rounds' own ratios, a throughput the median of its rounds.
Figures go to a JSON file and a PNG chart; docs/performance.md explains them.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from devtools.paths import local_dir
from devtools.perf.cpu import TierClock
from devtools.perf.load import LoadError, Measured, drive
from devtools.perf.micro import validation_costs
from devtools.perf.naive import naive_chain
from devtools.perf.report import refusals, table
from devtools.perf.stack import BenchError, Stack, floor, real_stack, web_cookie
from devtools.tls import ca_env, ensure_dev_tls
from devtools.token import device_code_token

USER = "alice@contoso.test"
# Away from a developer's `make run` (offset 0) and from the test runs' stacks (devtools.ports).
PORT_OFFSET = 1200
FLOOR_PORTS = (9300, 9301, 9302)
NAIVE_PORTS = (9310, 9311)
TASKS = 5


@dataclass
class Plan:
    # Short and many: this machine's speed moves within seconds, so a target and its floor are measured
    # back to back, and six rounds' ratios give a median that one slow moment does not move.
    seconds: int = 2
    rounds: int = 6
    connections: tuple[int, ...] = (16, 32)
    postgres: bool = True


SMOKE = Plan(seconds=1, rounds=1, connections=(4,), postgres=True)


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    chain: bool = False  # the real stack (its identity provider's counters are read around it)
    runs: dict[int, list[Measured]] = field(default_factory=dict)
    cpu: dict[int, list[dict[str, float]]] = field(default_factory=dict)  # each tier's µs a request, per round

    def median(self, connections: int) -> dict[str, Any]:
        runs, cpu = self.runs[connections], self.cpu.get(connections, [])
        tiers = sorted({tier for run in cpu for tier in run})
        return {
            "rps": statistics.median(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "failed": sum(r.non_2xx for r in runs),
            "cpu_us": {t: us for t in tiers if (us := round(statistics.median(run.get(t, 0.0) for run in cpu)))},
        }


def _seed(stack: Stack, token: str) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=stack.info["ca_bundle"]), timeout=10) as http:
        api = str(stack.info["api"])
        have = http.get(f"{api}/tasks", headers={"Authorization": f"Bearer {token}"}).json()
        for n in range(len(have), TASKS):
            answer = http.post(
                f"{api}/tasks", json={"title": f"task {n}"}, headers={"Authorization": f"Bearer {token}"}
            )
            if answer.status_code != 201:
                raise BenchError(f"seeding tasks failed: {answer.status_code} {answer.text[:200]}")


# What differs between two renderings of the same tasks page: ids, times and the form token.
_VARYING = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "ID"),
    (re.compile(r'(name="csrf_token" value=")[^"]*'), r"\1TOKEN"),
    (re.compile(r"<time [^>]*>[^<]*</time>"), "TIME"),
]


def page_difference(real: str, floor: str) -> str | None:
    """Where the floor's tasks page differs from the web app's, but for what varies between renderings; None
    when it is the same page (so the floor's template work is the web app's, and the ratio measures the rest)."""

    def lines(html: str) -> list[str]:
        for pattern, same in _VARYING:
            html = pattern.sub(same, html)
        return [line.strip() for line in html.splitlines() if line.strip()]

    diff = list(difflib.unified_diff(lines(real), lines(floor), "web", "web floor", n=0, lineterm=""))
    return "\n".join(diff[:12]) if diff else None


def _same_page(real_url: str, floor_url: str, cookie: str) -> None:
    with httpx.Client(timeout=10) as http:
        real, floor_page = http.get(real_url, headers={"Cookie": cookie}), http.get(floor_url)
    if real.status_code != 200 or floor_page.status_code != 200:
        raise BenchError(f"the tasks page answered {real.status_code} (web) and {floor_page.status_code} (floor)")
    if (difference := page_difference(real.text, floor_page.text)) is not None:
        raise BenchError(
            "the floor no longer renders the page the web app sends; make perf/floor.py's _page match:\n" + difference
        )


def _rounds(targets: list[Target], plan: Plan, stack: Stack, say: Callable[[str], None]) -> dict[str, int]:
    """Every target once per round and connection count, in the order given and backwards every other round
    (a target and its floor side by side, each first in turn); what the real chain asked of the identity
    provider meanwhile (the emulator's counters, read around the chain's own runs only)."""
    for target in targets:  # warm: connections, caches, the first on-behalf-of exchange
        drive(target.url, seconds=1, connections=4, headers=target.headers)
    asked = {"requests": 0, "token_requests": 0, "key_set_requests": 0}  # counters, not passwords  # nosec B105
    parents = {int(stack.info["runner_pid"]), os.getpid()}  # the stack's tiers and the floor's
    for n in range(plan.rounds):
        for connections in plan.connections:
            for target in targets if n % 2 == 0 else targets[::-1]:
                before = stack.stats() if target.chain else None
                clock = TierClock(parents)
                got = drive(target.url, seconds=plan.seconds, connections=connections, headers=target.headers)
                target.cpu.setdefault(connections, []).append(clock.per_request_us(got.requests))
                if before is not None:
                    after = stack.stats()
                    asked["requests"] += got.requests
                    for counter in ("token_requests", "key_set_requests"):
                        asked[counter] += after[counter] - before[counter]
                target.runs.setdefault(connections, []).append(got)
                say(f"  round {n + 1} c={connections} {target.name:<22} {got.rps:8.1f} req/s p99 {got.p99_ms:7.1f} ms")
    return asked


def _chain_targets(stack: Stack, token: str, cookie: str, suffix: str) -> list[Target]:
    return [
        Target(f"web{suffix}", f"{stack.info['web']}/tasks", {"Cookie": cookie}, chain=True),
        Target(f"api{suffix}", f"{stack.info['api']}/tasks", {"Authorization": f"Bearer {token}"}, chain=True),
    ]


def measure(plan: Plan, out: Path, say: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    local = local_dir() / "bench"
    results: dict[str, Any] = {"plan": asdict(plan), "targets": {}, "ratios": {}}
    targets: list[Target] = []
    with real_stack(local / "sqlite", PORT_OFFSET) as stack:
        tls = ensure_dev_tls(local / "sqlite")
        os.environ.update(ca_env(tls))  # this process's own calls (the key set) trust the dev CA too
        token = device_code_token(stack.info, USER, list(stack.info["api_scopes"]))
        _seed(stack, token)
        cookie = web_cookie(stack, USER)
        chain = _chain_targets(stack, token, cookie, "")
        with (
            floor(tls, local / "logs", FLOOR_PORTS, f"sqlite:///{local / 'floor.sqlite3'}") as floor_web,
            naive_chain(stack, tls, local / "logs", NAIVE_PORTS) as naive_api,
        ):
            floors = [
                Target("web floor", f"{floor_web}/tasks", {}),
                Target("api floor", f"https://localhost:{FLOOR_PORTS[1]}/tasks", {}),
            ]
            _same_page(chain[0].url, floors[0].url, cookie)
            naive = [Target("api naive", f"{naive_api}/tasks", {"Authorization": f"Bearer {token}"})]
            targets = [*chain, *floors, *naive]
            asked = _rounds(_side_by_side(chain, floors), plan, stack, say)
            # Last and apart: its backlog would still be asking the identity provider during the next run.
            _rounds(naive, plan, stack, say)
        results["steady_state"] = {
            "requests": asked["requests"],
            "token_requests_per_1000": 1000 * asked["token_requests"] / max(asked["requests"], 1),
            "key_set_requests_per_1000": 1000 * asked["key_set_requests"] / max(asked["requests"], 1),
        }
        results["validation"] = validation_costs(stack, token)
    if plan.postgres:
        targets += _postgres_phase(plan, local, say)
    for target in targets:
        results["targets"][target.name] = {str(c): target.median(c) for c in target.runs}
    results["round_ratios"] = _round_ratios({t.name: t for t in targets})
    results["ratios"] = _ratios(results["targets"], results["round_ratios"])
    results["seconds"] = round(time.monotonic() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def _postgres_phase(plan: Plan, local: Path, say: Callable[[str], None]) -> list[Target]:
    """The real chain and the floor again, downstream-api on PostgreSQL (a database password is a token)."""
    with real_stack(local / "pg", PORT_OFFSET, db="postgres") as stack:
        tls = ensure_dev_tls(local / "pg")
        token = device_code_token(stack.info, USER, list(stack.info["api_scopes"]))
        _seed(stack, token)
        chain = _chain_targets(stack, token, web_cookie(stack, USER), " (postgres)")
        database = str(stack.info["database"])  # downstream-api's role, no password: its token is the credential
        identity = stack.identity("downstream-api")
        with floor(tls, local / "logs", FLOOR_PORTS, database, identity) as floor_web:
            floors = [
                Target("web floor (postgres)", f"{floor_web}/tasks", {}),
                Target("api floor (postgres)", f"https://localhost:{FLOOR_PORTS[1]}/tasks", {}),
            ]
            _rounds(_side_by_side(chain, floors), Plan(plan.seconds, plan.rounds, plan.connections[:1]), stack, say)
    return [*chain, *floors]


def _side_by_side(chain: list[Target], floors: list[Target]) -> list[Target]:
    return [t for pair in zip(chain, floors, strict=True) for t in pair]


# Measured side by side (the same rounds): each round's ratio counts. The naive build runs apart, after.
_FLOORED = [("web", "web floor"), ("api", "api floor")] + [
    (f"{a} (postgres)", f"{a} floor (postgres)") for a in ("web", "api")
]


def _round_ratios(targets: dict[str, Target]) -> dict[str, dict[str, list[float]]]:
    found: dict[str, dict[str, list[float]]] = {}
    for a, b in _FLOORED:
        if a not in targets or b not in targets:
            continue
        for conns, runs in targets[a].runs.items():
            floor_runs = targets[b].runs[conns]
            found.setdefault(str(conns), {})[f"{a} / {b}"] = [
                round(r.rps / f.rps, 3) for r, f in zip(runs, floor_runs, strict=True)
            ]
    return found


def _ratios(
    targets: dict[str, dict[str, dict[str, float]]], rounds: dict[str, dict[str, list[float]]]
) -> dict[str, dict[str, float]]:
    """A target against its floor: the median of the rounds' ratios; against the naive build (measured apart):
    the ratio of the medians."""
    ratios: dict[str, dict[str, float]] = {}
    for conns, by_pair in rounds.items():
        ratios[conns] = {pair: statistics.median(values) for pair, values in by_pair.items()}
        if conns in targets.get("api naive", {}) and conns in targets.get("api", {}):
            ratios[conns]["api / api naive"] = targets["api"][conns]["rps"] / targets["api naive"][conns]["rps"]
    return ratios


def main(smoke: bool, out: Path) -> int:
    plan = SMOKE if smoke else Plan()
    try:
        results = measure(plan, out)
    except (BenchError, LoadError) as exc:
        print(f"zt bench: {exc}", file=sys.stderr)
        return 1
    print(table(results))
    if not smoke:
        from devtools.perf.chart import chart

        chart(results, out.with_suffix(".png"))
    failed = refusals(results)
    if failed:
        print("zt bench: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0
