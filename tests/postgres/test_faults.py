"""Database down, managed-identity endpoint down: downstream-api answers a clean 503 at once and
recovers by itself when they are back, without a restart.

downstream-api runs as a process over HTTPS on its own cluster; requests carry a valid user token, so
only the data tier can be the cause.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.postgres.conftest import PgStack, records_client
from tests.support.launch import LiveEmulator, LiveService, start_emulator

pytestmark = [pytest.mark.live, pytest.mark.guidance("identity-non-user-applications")]

# A request that meets an outage must be answered within this long (no hanging on retries).
FAST_SECONDS = 3.0
RECOVERY_SECONDS = 20.0


def assert_clean_503(r: httpx.Response, elapsed: float) -> None:
    assert r.status_code == 503, r.text
    assert elapsed < FAST_SECONDS, f"took {elapsed:.1f} s"
    body = r.json()
    assert set(body) == {"error", "error_description", "correlation_id"}
    assert body["error"] == "temporarily_unavailable"
    assert body["correlation_id"] == r.headers["x-correlation-id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert r.headers["retry-after"] == "5"
    assert "Traceback" not in r.text and "psycopg" not in r.text and "postgres" not in r.text.lower()


def timed_get(http: httpx.Client) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = http.get("/records", headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    return r, time.monotonic() - started


def wait_for_200(http: httpx.Client) -> None:
    """Poll until a request succeeds again; every answer meanwhile must be a clean 503."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        r, elapsed = timed_get(http)
        if r.status_code == 200:
            return
        assert_clean_503(r, elapsed)
        assert time.monotonic() < deadline, "downstream-api did not recover"
        time.sleep(0.2)


def start_downstream(
    pg: PgStack, start_service: Callable[..., LiveService], state: Path, **settings: str
) -> LiveService:
    return start_service("downstream_api", "DOWNSTREAM", pg.downstream_env(state, **settings), emulator=pg.emulator)


def test_database_down_is_a_quick_clean_503_and_recovers_without_a_restart(
    emulator_factory: Callable[..., LiveEmulator],
    pg_factory: Callable[[LiveEmulator], PgStack],
    start_service: Callable[..., LiveService],
    tmp_path: Path,
) -> None:
    pg = pg_factory(emulator_factory())
    downstream = start_downstream(pg, start_service, tmp_path / "downstream")
    try:
        with records_client(downstream.base, pg.emulator.tls.ca_bundle, pg.user_token(downstream.base)) as http:
            assert http.post("/records", json={"title": "before the outage"}).status_code == 201
            pg.cluster.stop()
            for _ in range(3):  # the pooled connection is dead, and so is every new one
                assert_clean_503(*timed_get(http))
            pg.cluster.start()
            wait_for_200(http)
            titles = [r["title"] for r in http.get("/records").json()]
            assert titles == ["before the outage"]
            assert downstream.process.poll() is None  # the same process throughout
    finally:
        downstream.stop()
    log = downstream.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "OperationalError" in log


def test_identity_endpoint_down_is_a_quick_clean_503_and_recovers_without_a_restart(
    emulator_factory: Callable[..., LiveEmulator],
    pg_factory: Callable[[LiveEmulator], PgStack],
    start_service: Callable[..., LiveService],
    tmp_path: Path,
) -> None:
    # Database tokens that expire in a few seconds and connections that are never reused: soon
    # after the endpoint goes away, a new connection needs a token that cannot be had.
    lifetime = 6
    emulator = emulator_factory(managed_identity_token_lifetime=str(lifetime))
    pg = pg_factory(emulator)
    downstream = start_downstream(pg, start_service, tmp_path / "downstream", database_pool_recycle_seconds="1")
    ports = (int(emulator.base.rsplit(":", 1)[1]), int(emulator.front.rsplit(":", 1)[1]))
    try:
        with records_client(downstream.base, emulator.tls.ca_bundle, pg.user_token(downstream.base)) as http:
            # Also fetches the user-token signing keys, which downstream-api then keeps.
            assert http.get("/records").status_code == 200
            emulator.stop()
            # Until the cached database token expires, new connections still get in (that is the
            # cache doing its job); after it, every answer must be a clean 503.
            deadline = time.monotonic() + lifetime + 10
            while True:
                r, elapsed = timed_get(http)
                if r.status_code == 503:
                    assert_clean_503(r, elapsed)
                    break
                assert r.status_code == 200, r.text
                assert time.monotonic() < deadline, "the expired token was never found missing"
                time.sleep(0.5)
            assert_clean_503(*timed_get(http))
            restarted = start_emulator(emulator.local_dir, ports=ports, managed_identity_token_lifetime=str(lifetime))
            try:
                wait_for_200(http)
                assert downstream.process.poll() is None
            finally:
                restarted.stop()
    finally:
        downstream.stop()
    log = downstream.log_path.read_text(errors="replace")
    # The cause logged is the missing token (azure-postgresql-auth's error), not the database.
    assert "Traceback" not in log and "database unavailable" in log and "EntraConnectionValueError" in log


def test_a_migration_that_cannot_reach_the_database_fails_clearly(pg: PgStack) -> None:
    from devtools.layout import run_migration
    from devtools.ports import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("DOWNSTREAM_")}
    dead = pg.cluster.url("database-admin").replace(f":{pg.cluster.port}/", f":{free_port()}/")
    with pytest.raises(RuntimeError) as failed:
        run_migration(
            {
                **env,
                **pg.emulator.managed_identity_env("database-admin"),
                "DOWNSTREAM_AUTHORITY": pg.emulator.authority(),
                "DOWNSTREAM_DATABASE_URL": dead,
                "DOWNSTREAM_DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
            },
            timeout=60,
        )
    message = str(failed.value)
    assert "the schema migration failed (exit 1)" in message and "could not migrate" in message
    assert "Connection refused" in message and "Traceback" not in message
