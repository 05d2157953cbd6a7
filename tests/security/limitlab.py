"""A chain of its own for the rate-limit tests: every tier with small limits (settings, so a flood is a few
dozen requests, not millions) and one clock file they all read (`<PREFIX>_RATE_CLOCK_FILE`), so a test
moves time forward instead of sleeping through a window.

The limits: a bucket of PEER requests per peer and CALLER per caller (downstream-api: DOWNSTREAM_CALLER,
smaller, so it is the one a chained request meets first), refilled at RATE a second: slow enough that the
real seconds a test takes add at most a request or two.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.chain import Chain, start_chain
from tests.support.launch import LiveEmulator
from tests.support.tokens import Api, apis_at

PEER = 30
CALLER = 8
DOWNSTREAM_CALLER = 4
RATE = 0.05  # a request every 20 s: Retry-After is at most 20


def limits(clock: Path, caller: int = CALLER) -> dict[str, str]:
    return {
        "rate_peer_per_second": str(RATE),
        "rate_peer_burst": str(PEER),
        "rate_caller_per_second": str(RATE),
        "rate_caller_burst": str(caller),
        "rate_clock_file": str(clock),
    }


@dataclass
class LimitLab:
    chain: Chain
    clock: Path
    offset: float = 0.0

    @property
    def targets(self) -> dict[str, Api]:
        return apis_at(self.chain.api.base, self.chain.services[0].base)

    @property
    def emulator(self) -> LiveEmulator:
        return self.chain.emulator

    def base(self, tier: str) -> str:
        return {"web": self.chain.web.base, "api": self.chain.api.base, "downstream-api": self.chain.services[0].base}[
            tier
        ]

    def advance(self, seconds: float) -> None:
        """Every tier's limits, `seconds` later."""
        self.offset += seconds
        self.clock.write_text(str(self.offset))

    def fresh(self) -> None:
        """Every bucket full again: an hour on, far past any window."""
        self.advance(3600)

    def http(self) -> httpx.Client:
        tls = ssl.create_default_context(cafile=self.emulator.tls.ca_bundle)
        return httpx.Client(verify=tls, timeout=15, trust_env=False, follow_redirects=False)


def start_limit_lab(emulator: LiveEmulator, workdir: Path) -> Iterator[LimitLab]:
    clock = workdir / "clock"
    clock.write_text("0")
    chain = start_chain(
        emulator,
        workdir,
        web=limits(clock),
        api=limits(clock),
        downstream=limits(clock, DOWNSTREAM_CALLER),
    )
    try:
        yield LimitLab(chain, clock)
    finally:
        chain.stop()
