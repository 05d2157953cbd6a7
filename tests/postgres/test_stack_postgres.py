"""`zt run --db postgres` (what `make run DB=postgres` runs): web -> api -> downstream-api -> PostgreSQL.

alice adds a task in the browser's place; the row lands in the private cluster, written by
downstream-api's role with its managed identity's token, and stack.json names the database without
any credential.
"""

from __future__ import annotations

import html
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from devtools.postgres import DATABASE, SUPERUSER
from sqlalchemy.engine import make_url

from tests.e2e.test_chain import csrf, sign_in
from tests.support.launch import POSTGRES_STACK_OFFSET, RunningStack, start_stack
from tests.support.people import Person

pytestmark = [pytest.mark.live, pytest.mark.guidance("identity-non-user-applications")]

OFFSET = POSTGRES_STACK_OFFSET


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    local = tmp_path_factory.mktemp("pgstack")
    command = [sys.executable, "-m", "devtools.cli", "run", "--port-offset", str(OFFSET), "--db", "postgres"]
    # Within start_stack's own wait, so the runner gives up first and stops what it started.
    command += ["--ready-timeout", "120"]
    running = start_stack(local, OFFSET, command)
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(30)


def superuser(local: Path, port: int) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=str(local / "postgres" / "socket"), port=port, user=SUPERUSER, dbname=DATABASE, autocommit=True
    )


def test_stack_json_names_the_database_with_downstream_apis_role_and_no_password(pg_stack: RunningStack) -> None:
    url = make_url(pg_stack.info["database"])
    assert url.drivername == "postgresql+psycopg" and url.username == "downstream-api"
    assert url.password is None and url.host == "127.0.0.1" and url.database == DATABASE
    # TLS, the server's certificate and name checked against the dev CA alone.
    assert url.query["sslmode"] == "verify-full"
    assert url.query["sslrootcert"] == str(pg_stack.local_dir / "tls" / "ca.pem")


def test_a_task_added_in_the_web_app_is_a_row_in_postgresql(pg_stack: RunningStack) -> None:
    alice = Person()
    sign_in(alice, pg_stack, "alice@contoso.test")
    page = alice.get(f"{pg_stack.web}/tasks")
    assert page.status_code == 200
    title = "Stored in PostgreSQL (e2e)"
    # The first write asks alice for the write scope (incremental consent), once.
    r = alice.consent_if_asked(alice.post(f"{pg_stack.web}/tasks", {"csrf_token": csrf(page.text), "title": title}))
    assert r.status_code == 303
    assert title in alice.get(f"{pg_stack.web}/tasks").text

    port = make_url(pg_stack.info["database"]).port
    assert port is not None
    with superuser(pg_stack.local_dir, port) as conn:
        assert conn.execute("SELECT count(*) FROM records WHERE title = %s", (title,)).fetchone() == (1,)
        # downstream-api logged in as its own role (with its token), and the schema is the admin's.
        sessions = conn.execute("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s", (DATABASE,))
        assert ("downstream-api",) in sessions.fetchall()
        # Each of its connections over TLS (the cluster would refuse any other).
        tls = conn.execute(
            "SELECT DISTINCT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = %s",
            ("downstream-api",),
        )
        assert tls.fetchall() == [(True,)]
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'records'").fetchone()
        assert owner == ("database-admin",)


def test_the_chain_page_names_downstream_apis_role_and_managed_identity_at_the_database(pg_stack: RunningStack) -> None:
    alice = Person()
    sign_in(alice, pg_stack, "alice@contoso.test", "/chain")
    page = alice.get(f"{pg_stack.web}/chain")
    assert page.status_code == 200
    hop = html.unescape(re.sub(r"<[^>]+>", "", page.text.split('<dl class="hop">', 1)[1].split("</dl>", 1)[0]))
    assert f"postgresql · {DATABASE}" in hop
    # The role the server authenticated, the identity whose token was its password, and no more privilege.
    assert "role downstream-api, the service's system-assigned managed identity" in hop
    assert "an Entra token of the managed identity as the password" in hop
    assert "not a superuser" in hop and "bound by row-level security" in hop
    assert "sslrootcert" not in page.text and pg_stack.info["database"] not in page.text
