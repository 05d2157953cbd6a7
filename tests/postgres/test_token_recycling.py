"""Five minutes of steady traffic while database tokens live two minutes: not one request fails.

This is the outage of passwordless samples that fetch one token at startup and break when it
expires: here every new pooled connection gets a current token, and the pool recycles connections
well before a token's end. The run goes through downstream-api over HTTPS at a steady pace; the
token responder in front of the cluster counts the logins and the distinct tokens they used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from devtools.testing import LiveEmulator

from tests.conftest import LiveService
from tests.postgres.conftest import PgStack, records_client

pytestmark = [pytest.mark.live, pytest.mark.guidance("identity-non-user-applications")]

TOKEN_LIFETIME = 120
POOL_RECYCLE = 30
RUN_SECONDS = 300
PACE = 0.5  # one request every half second, scheduled from the start (no drift, no bursts)


def test_steady_requests_for_five_minutes_with_two_minute_tokens_never_fail(
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
                time.sleep(max(0.0, started + sent * PACE - time.monotonic()))
            elapsed = time.monotonic() - started
            stored = http.get("/records").json()
    finally:
        downstream.stop()
    after = pg.responder.counters.snapshot()

    assert failures == [], f"{len(failures)} of {sent} requests failed: {failures[:5]}"
    assert sent >= 0.9 * RUN_SECONDS / PACE and elapsed < RUN_SECONDS + 30
    assert len(stored) == (sent + 1) // 2  # every write is there
    logins = after["accepted"] - before["accepted"]
    tokens = after["distinct_tokens"] - before["distinct_tokens"]
    # Connections were recycled (one login per recycle period at least) ...
    assert logins >= RUN_SECONDS // POOL_RECYCLE - 1, after
    # ... with a token that was current each time: more than one token was needed to last the run.
    assert tokens >= RUN_SECONDS // TOKEN_LIFETIME + 1, after
    assert after["refused"] == before["refused"], after
