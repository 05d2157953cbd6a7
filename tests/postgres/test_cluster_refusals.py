"""The cluster itself admits only a valid token of the role's own managed identity.

Each test connects with psycopg straight to the cluster over TCP, as an attacker on the network path
or with a stolen identity would: no application in between to rely on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import downstream_api.db
import jwt
import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.pgtoken import OSSRDBMS_AUDIENCE

from tests.postgres.conftest import PgStack
from tests.support.tokens import Issuer

pytestmark = [pytest.mark.live, pytest.mark.guidance("identity-non-user-applications")]

REFUSED = 'LDAP authentication failed for user "{}"'


def claims_of(token: str) -> dict[str, Any]:
    # Only to copy a real token's claims into a deliberately wrong one; the cluster verifies.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def assert_refused(pg: PgStack, role: str, password: str | None, reason: str = "") -> None:
    before = pg.responder.counters.snapshot()
    with pytest.raises(psycopg.OperationalError) as refused:
        pg.connect(role, password).close()
    message = str(refused.value)
    if password:
        assert REFUSED.format(role) in message, message
        after = pg.responder.counters.snapshot()
        # The responder, not some other failure, said no.
        assert after["refused"] == before["refused"] + 1 and after["accepted"] == before["accepted"], reason
    else:
        assert "no password supplied" in message, message


def test_the_roles_own_token_is_let_in_and_nothing_else_is_needed(pg: PgStack) -> None:
    with pg.connect("downstream-api", pg.token("downstream-api")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("downstream-api",)


def test_no_token_is_refused(pg: PgStack) -> None:
    assert_refused(pg, "downstream-api", None)


def test_an_empty_or_arbitrary_password_is_refused(pg: PgStack) -> None:
    assert_refused(pg, "downstream-api", "hunter2", "not a token at all")
    assert_refused(pg, "downstream-api", "a.b.c", "token-shaped garbage")


def test_a_forged_token_is_refused(pg: PgStack) -> None:
    real = pg.token("downstream-api")
    kid = jwt.get_unverified_header(real)["kid"]
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims_of(real), forger, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})
    assert_refused(pg, "downstream-api", forged, "same claims and kid, another key")


def test_an_unsigned_token_is_refused(pg: PgStack) -> None:
    unsigned = jwt.encode(claims_of(pg.token("downstream-api")), None, algorithm="none")
    assert_refused(pg, "downstream-api", unsigned, "alg none")


def test_an_expired_token_is_refused(pg: PgStack) -> None:
    now = int(time.time())
    claims = {**claims_of(pg.token("downstream-api")), "iat": now - 7200, "nbf": now - 7200, "exp": now - 60}
    expired = Issuer(pg.emulator).sign(claims)  # the emulator's own signing key: only the lifetime is wrong
    assert_refused(pg, "downstream-api", expired, "expired a minute ago")


def test_a_token_for_another_audience_is_refused(pg: PgStack) -> None:
    # A genuine token of the same identity, issued for another resource (the token-exchange audience).
    other = pg.token("downstream-api", "api://AzureADTokenExchange")
    assert claims_of(other)["aud"] != OSSRDBMS_AUDIENCE
    assert_refused(pg, "downstream-api", other, "aud is not Azure Database for PostgreSQL")


def test_a_token_of_another_tenants_issuer_is_refused(pg: PgStack) -> None:
    claims = {**claims_of(pg.token("downstream-api")), "iss": Issuer(pg.emulator).issuer("fabrikam")}
    assert_refused(pg, "downstream-api", Issuer(pg.emulator).sign(claims), "issued by another tenant")


@pytest.mark.parametrize("role", ["database-admin", "postgres", "api"])
def test_downstream_apis_token_is_refused_for_another_role(pg: PgStack, role: str) -> None:
    assert_refused(pg, role, pg.token("downstream-api"), f"downstream-api's token used for {role}")


def test_another_identitys_token_is_refused_for_downstream_apis_role(pg: PgStack) -> None:
    assert_refused(pg, "downstream-api", pg.token("api"), "the api's identity is not downstream-api's")


def _migrations_head() -> str:
    config = Config()
    config.set_main_option("script_location", str(Path(downstream_api.db.__file__).parent / "migrations"))
    (head,) = ScriptDirectory.from_config(config).get_heads()
    return head


def test_downstream_api_may_only_read_and_write_rows(pg: PgStack) -> None:
    with pg.connect("downstream-api", pg.token("downstream-api")) as conn:
        assert conn.execute("SELECT count(*) FROM records").fetchone() is not None
        # It may read the schema version (the migrations' single head), never change it.
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (_migrations_head(),)
        for statement in (
            "CREATE TABLE stolen (x int)",
            "DROP TABLE records",
            "ALTER TABLE records ADD COLUMN x int",
            "TRUNCATE records",
            "CREATE ROLE intruder LOGIN",
            "UPDATE alembic_version SET version_num = 'faked'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_tables_of_later_migrations_are_granted_to_downstream_api_too(pg: PgStack) -> None:
    with pg.connect("database-admin", pg.token("database-admin")) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS later_migration (id int PRIMARY KEY)")
    try:
        with pg.connect("downstream-api", pg.token("downstream-api")) as conn:
            conn.execute("INSERT INTO later_migration VALUES (1)")
            assert conn.execute("SELECT id FROM later_migration").fetchall() == [(1,)]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DROP TABLE later_migration")
    finally:
        with pg.connect("database-admin", pg.token("database-admin")) as admin:
            admin.execute("DROP TABLE later_migration")
