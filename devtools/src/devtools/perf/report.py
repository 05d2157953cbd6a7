"""What `make bench` prints: the table, the ratios with their rounds' spread, and the targets that met a refusal."""

from __future__ import annotations

from typing import Any

IDLE_US = 50
_ORDER = ["web", "api", "downstream-api", "floor web", "floor api", "floor downstream"]


def _chain_order(item: tuple[str, float]) -> int:
    return _ORDER.index(item[0]) if item[0] in _ORDER else len(_ORDER)


def table(results: dict[str, Any]) -> str:
    lines = [f"{'target':<22} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>6}"]
    for name, by_conns in results["targets"].items():
        for conns, m in by_conns.items():
            lines.append(
                f"{name:<22} {conns:>5} {m['rps']:9.1f} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} {int(m['failed']):6d}"
            )
    lines.append("")
    for conns, ratios in results["ratios"].items():
        spread = results.get("round_ratios", {}).get(conns, {})

        def shown(pair: str, ratio: float, spread: dict[str, list[float]] = spread) -> str:
            rounds = spread.get(pair)
            return f"{pair} {ratio:.2f}x" + (f" (rounds {min(rounds):.2f}-{max(rounds):.2f})" if rounds else "")

        lines.append(f"ratios at {conns} connections: " + ", ".join(shown(k, v) for k, v in ratios.items()))
    for conns in results["ratios"]:
        spent = [
            f"{name}: " + ", ".join(f"{tier} {us:,.0f}" for tier, us in sorted(working.items(), key=_chain_order))
            for name, by_conns in results["targets"].items()
            if (m := by_conns.get(conns))
            # A tier the target does not pass through shows a clock tick now and then: not its work.
            and (working := {tier: us for tier, us in m.get("cpu_us", {}).items() if us >= IDLE_US})
        ]
        if spent:
            lines.append(f"CPU a request at {conns} connections (µs, each tier's process): " + "; ".join(spent))
    steady = results["steady_state"]
    lines.append(
        f"steady state ({steady['requests']} chain requests): {steady['token_requests_per_1000']:.2f} token-endpoint "
        f"and {steady['key_set_requests_per_1000']:.2f} key-set requests per 1,000"
    )
    v = results["validation"]
    lines.append(
        f"validation per call: cached {v['cached_us']:.1f} us, full {v['full_us']:.1f} us, "
        f"raw RS256 verify {v['raw_rs256_us']:.1f} us"
    )
    if "bare_us" in v:
        lines.append(
            f"one api request in process: bare {v['bare_us']:.0f} us, with the shared layers "
            f"{v['with_shared_layers_us']:.0f} us, token checked {v['with_token_checked_us']:.0f} us, "
            f"audit line {v['with_audit_line_us']:.0f} us, span written {v['with_span_written_us']:.0f} us, "
            f"rate limits {v['with_rate_limits_us']:.0f} us"
        )
    lines.append(f"took {results['seconds']} s")
    return "\n".join(lines)


def refusals(results: dict[str, Any]) -> list[str]:
    """Targets that met answers other than 2xx: none may. A 429 there means a rate limit (the tiers'
    <PREFIX>_RATE_* settings, zerotrust.limits) is set below what one user at full speed sends."""
    return [
        f"{name} at {conns} connections: {int(m['failed'])} answers were not 2xx (429: a rate limit tripped)"
        for name, by_conns in results["targets"].items()
        for conns, m in by_conns.items()
        if m["failed"]
    ]
