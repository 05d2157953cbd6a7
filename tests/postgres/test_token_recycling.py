"""Steady traffic across several database-token lifetimes: not one request fails.

This is the outage of passwordless samples that fetch one token at startup and break when it
expires: here every new pooled connection gets a current token, and the pool recycles connections
well before a token's end. Token lifetime and pool recycling are settings, so the same proportions as
in Azure (tokens of an hour, connections of half an hour) run here in seconds: tokens of 6 s,
connections recycled every 2 s, 20 s of traffic. The run goes through downstream-api over HTTPS; the
token responder in front of the cluster counts the logins and the distinct tokens they used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.postgres.conftest import PgStack, records_client
from tests.support.launch import LiveEmulator, LiveService

pytestmark = [pytest.mark.live, pytest.mark.guidance("identity-non-user-applications")]

TOKEN_LIFETIME = 6
POOL_RECYCLE = 2
RUN_SECONDS = 20
MIN_REQUESTS = 60


def every_record(http: httpx.Client) -> list[dict[str, object]]:
    """All of the caller's records, page by page (a list answers a page at a time, its Link names the next)."""
    found: list[dict[str, object]] = []
    url: str | None = "/records?$top=500"
    while url:
        r = http.get(url)
        assert r.status_code == 200, r.text
        found += r.json()
        url = r.links.get("next", {}).get("url")
    return found


def test_steady_requests_across_several_token_lifetimes_never_fail(
    emulator_factory: Callable[..., LiveEmulator],
    pg_factory: Callable[[LiveEmulator], PgStack],
    start_service: Callable[..., LiveService],
    tmp_path: Path,
) -> None:
    emulator = emulator_factory(managed_identity_token_lifetime=str(TOKEN_LIFETIME))
    pg = pg_factory(emulator)
    env = pg.downstream_env(tmp_path / "downstream", database_pool_recycle_seconds=str(POOL_RECYCLE))
    downstream = start_service("downstream_api", "DOWNSTREAM", env, emulator=emulator)
    before = pg.responder.counters.snapshot()
    failures: list[str] = []
    sent = 0
    try:
        with records_client(downstream.base, emulator.tls.ca_bundle, pg.user_token(downstream.base)) as http:
            started = time.monotonic()
            while time.monotonic() - started < RUN_SECONDS:
                if sent % 2 == 0:
                    r, expected = http.post("/records", json={"title": f"steady {sent}"}), 201
                else:
                    r, expected = http.get("/records"), 200
                if r.status_code != expected:
                    failures.append(f"{time.monotonic() - started:.1f}s: {r.status_code} {r.text[:200]}")
                sent += 1
            elapsed = time.monotonic() - started
            stored = every_record(http)
    finally:
        downstream.stop()
    after = pg.responder.counters.snapshot()

    assert failures == [], f"{len(failures)} of {sent} requests failed: {failures[:5]}"
    assert sent >= MIN_REQUESTS and elapsed < RUN_SECONDS + 30
    assert len(stored) == (sent + 1) // 2  # every write is there
    logins = after["accepted"] - before["accepted"]
    tokens = after["distinct_tokens"] - before["distinct_tokens"]
    # Connections were recycled (one login per recycle period at least) ...
    assert logins >= RUN_SECONDS // POOL_RECYCLE - 1, after
    # ... with a token that was current each time: more than one token was needed to last the run.
    assert tokens >= RUN_SECONDS // TOKEN_LIFETIME + 1, after
    assert after["refused"] == before["refused"], after
