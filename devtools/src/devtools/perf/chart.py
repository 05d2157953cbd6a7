"""The bench's figures as a PNG: throughput of each target, and the p99 beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display here, and none needed
    import matplotlib.pyplot as plt

    targets = results["targets"]
    names = list(targets)
    levels = sorted({c for by_conns in targets.values() for c in by_conns}, key=int)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.6 * len(names) + 2))
    height = 0.8 / max(len(levels), 1)
    for i, conns in enumerate(levels):
        ys = [n + i * height for n in range(len(names))]
        left.barh(ys, [targets[t].get(conns, {}).get("rps", 0) for t in names], height, label=f"{conns} connections")
        right.barh(
            ys, [targets[t].get(conns, {}).get("p99_ms", 0) for t in names], height, label=f"{conns} connections"
        )
    for axis, title in ((left, "requests per second (higher is better)"), (right, "p99 latency, ms (lower is better)")):
        axis.set_yticks([n + height * (len(levels) - 1) / 2 for n in range(len(names))], names)
        axis.invert_yaxis()
        axis.set_title(title)
        axis.legend(loc="lower right")
    right.set_yticklabels([])
    fig.suptitle("make bench: the Zero Trust chain against the floor (no auth) and a naive build")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
