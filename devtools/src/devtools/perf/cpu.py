"""The CPU time each tier's process spends per request while wrk drives a target: from /proc, around each run.

Throughput says how much the chain does in all; this says where: a tier's cost above its floor's is the price of
what that tier checks. Only the bench's own processes count (children of its stack's runner, or of the bench
itself), never another stack's that happens to be running.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
# What `python -m <module>` runs, by tier name.
_TIERS = {"web": "web", "api": "api", "downstream_api": "downstream-api"}


def tier_of(argv: list[str]) -> str | None:
    """The tier a command line runs: a real one (`python -m web`) or the floor's (`-m devtools.perf.floor api ...`)."""
    if "-m" not in argv:
        return None
    module, rest = (argv[argv.index("-m") + 1 :] or [""])[0], argv[argv.index("-m") + 2 :]
    if module in _TIERS:
        return _TIERS[module]
    if module == "devtools.perf.floor" and rest:
        return f"floor {rest[0]}"
    return None


def _stat(pid: int) -> list[str] | None:
    try:
        # The command name, in brackets, may hold spaces: the fields are what follows its closing bracket.
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu_seconds(pid: int) -> float | None:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS if fields else None


def bench_tiers(parents: set[int]) -> dict[int, str]:
    """The tier processes whose parent is one of `parents`, by pid."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None or int(fields[1]) not in parents:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if (tier := tier_of(argv)) is not None:
            found[int(entry.name)] = tier
    return found


class TierClock:
    """Started before a run; `per_request_us(n)` after it: each tier's CPU (user and system) a request over the run."""

    def __init__(self, parents: set[int]) -> None:
        self.tiers = bench_tiers(parents)
        self.started = {pid: _cpu_seconds(pid) for pid in self.tiers}

    def per_request_us(self, requests: int) -> dict[str, float]:
        used: dict[str, float] = {}
        for pid, tier in self.tiers.items():
            before, after = self.started[pid], _cpu_seconds(pid)
            if before is not None and after is not None:
                used[tier] = used.get(tier, 0.0) + after - before
        return {tier: seconds * 1e6 / max(requests, 1) for tier, seconds in sorted(used.items()) if seconds > 0}
