"""What the database holds against downstream-api's own role, should the service be taken over: no login
without TLS, no database but its own, no temporary tables, and row-level security by tenant behind every
query's tenant filter.

Each test connects with psycopg straight to the cluster over TCP with downstream-api's genuine token, as a
compromised service would: only the database's own rules stand in the way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import certifi
import psycopg
import pytest
from devtools.postgres import ADMIN_ROLE, APP_ROLE

from tests.postgres.conftest import PgStack

pytestmark = [pytest.mark.live, pytest.mark.guidance("developer-strategy-authorization-best-practices")]

CONTOSO = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
FABRIKAM = "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
ALICE = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"


def app_connection(pg: PgStack, **options: str) -> psycopg.Connection[tuple[object, ...]]:
    return pg.connect(APP_ROLE, pg.token(APP_ROLE), **options)


def test_a_login_without_tls_is_refused_before_any_token_is_asked_for(pg: PgStack) -> None:
    before = pg.responder.counters.snapshot()
    with pytest.raises(psycopg.OperationalError) as refused:
        app_connection(pg, sslmode="disable").close()
    assert "no encryption" in str(refused.value), refused.value
    # The token never reached the responder: refused on the connection's kind, not its password.
    assert pg.responder.counters.snapshot() == before


def test_the_servers_certificate_and_name_are_checked_against_the_dev_ca(pg: PgStack) -> None:
    with app_connection(pg) as conn:
        ssl = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert ssl is not None and ssl[0] is True and ssl[1] in ("TLSv1.2", "TLSv1.3")
    # Other CAs (the public ones, none of which signed the dev certificate): verify-full refuses the server.
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(
            host="127.0.0.1",
            port=pg.cluster.port,
            user=APP_ROLE,
            password=pg.token(APP_ROLE),
            dbname="records",
            sslmode="verify-full",
            sslrootcert=certifi.where(),
            connect_timeout=5,
        ).close()


@pytest.mark.parametrize("dbname", ["postgres", "template1"])
def test_downstream_apis_role_can_connect_to_its_own_database_only(pg: PgStack, dbname: str) -> None:
    with pytest.raises(psycopg.OperationalError) as refused:
        app_connection(pg, dbname=dbname).close()
    assert f'permission denied for database "{dbname}"' in str(refused.value), refused.value


def test_downstream_apis_role_cannot_create_temporary_tables(pg: PgStack) -> None:
    with app_connection(pg) as conn:
        for statement in ("CREATE TEMP TABLE stash (x int)", "CREATE TEMPORARY TABLE stash AS SELECT * FROM records"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_downstream_apis_role_owns_nothing_and_bypasses_nothing(pg: PgStack) -> None:
    with app_connection(pg) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, False, False, False)
        owners = dict(
            conn.execute(
                "SELECT tablename, tableowner FROM pg_tables WHERE tablename IN ('records', 'provisioned_users')"
            ).fetchall()
        )
        assert owners == {"records": ADMIN_ROLE, "provisioned_users": ADMIN_ROLE}
        secured = conn.execute(
            "SELECT relname, relrowsecurity FROM pg_class WHERE relname IN ('records', 'provisioned_users')"
        ).fetchall()
        assert sorted(secured) == [("provisioned_users", True), ("records", True)]


@pytest.fixture
def contoso_rows(pg: PgStack) -> Iterator[list[str]]:
    """Two of contoso's records, written as the service writes them: its tenant declared for the transaction."""
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    with app_connection(pg) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (CONTOSO,))
        for record_id in ids:
            conn.execute(
                "INSERT INTO records (id, tenant_id, owner_oid, title, done, created_at) "
                "VALUES (%s, %s, %s, 'contoso only', false, now())",
                (record_id, CONTOSO, ALICE),
            )
    yield ids
    with app_connection(pg) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (CONTOSO,))
        conn.execute("DELETE FROM records WHERE id = ANY(%s)", (ids,))


def visible(conn: psycopg.Connection[tuple[object, ...]], tenant: str | None, ids: list[str]) -> list[str]:
    """The ids among `ids` a transaction declared for `tenant` sees, asking with no tenant filter at all."""
    with conn.transaction():
        if tenant is not None:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
        rows = conn.execute("SELECT id, tenant_id FROM records").fetchall()
    return sorted(str(r[0]) for r in rows if str(r[0]) in ids)


def test_another_tenants_transaction_sees_none_of_the_rows_even_without_a_where_clause(
    pg: PgStack, contoso_rows: list[str]
) -> None:
    with app_connection(pg) as conn:
        assert visible(conn, CONTOSO, contoso_rows) == sorted(contoso_rows)  # the control
        assert visible(conn, FABRIKAM, contoso_rows) == []
        # No tenant declared (a code path that forgot): no tenant's rows at all.
        assert visible(conn, None, contoso_rows) == []
        assert conn.execute("SELECT count(*) FROM records").fetchone() == (0,)
        # The declaration ends with its transaction: the pooled connection's next use starts from nothing.
        assert visible(conn, None, contoso_rows) == []


def test_another_tenants_transaction_can_neither_change_nor_plant_rows(pg: PgStack, contoso_rows: list[str]) -> None:
    with app_connection(pg) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (FABRIKAM,))
            changed = conn.execute("UPDATE records SET title = 'taken' WHERE id = ANY(%s)", (contoso_rows,))
            deleted = conn.execute("DELETE FROM records WHERE id = ANY(%s)", (contoso_rows,))
            assert (changed.rowcount, deleted.rowcount) == (0, 0)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (FABRIKAM,))
            conn.execute(
                "INSERT INTO records (id, tenant_id, owner_oid, title, done, created_at) "
                "VALUES (%s, %s, %s, 'planted', false, now())",
                (str(uuid.uuid4()), CONTOSO, ALICE),
            )
        assert visible(conn, CONTOSO, contoso_rows) == sorted(contoso_rows)
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (CONTOSO,))
            titles = conn.execute("SELECT DISTINCT title FROM records WHERE id = ANY(%s)", (contoso_rows,)).fetchall()
        assert titles == [("contoso only",)]


def test_a_role_name_with_a_line_break_is_one_line_in_the_responders_log(
    pg: PgStack, caplog: pytest.LogCaptureFixture
) -> None:
    # Through PostgreSQL, which passes the role name to the responder as the bind name.
    forged = "INFO devtools.pgtoken: bind accepted for role postgres"
    with caplog.at_level("INFO", logger="devtools.pgtoken"), pytest.raises(psycopg.OperationalError):
        pg.connect(f"nobody\n{forged}", "not-a-token").close()
    messages = [r.getMessage() for r in caplog.records if r.name == "devtools.pgtoken"]
    assert messages and all("\n" not in m and "\r" not in m for m in messages), messages
    assert any(m.startswith("bind refused for role nobody\\n") for m in messages), messages
