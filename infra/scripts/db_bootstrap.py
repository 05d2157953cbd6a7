"""Run in downstream-api's image as database-admin (the server's Entra administrator), by the migration
job: the database, downstream-api's least-privilege role, then the schema (python -m downstream_api.migrate).

What devtools.postgres.bootstrap does for the local cluster, the Azure way: the role is bound to the
managed identity's object id (pgaadauth_create_principal_with_oid), never given a password. Idempotent:
run at every deployment. Terraform passes this file as the job's `python -c` argument.
"""

import os
import sys

import psycopg
from azure.identity import ManagedIdentityCredential
from psycopg import sql
from sqlalchemy.engine import make_url

# zt: identity-non-user-applications
TOKEN_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"  # noqa: S105 - a scope, not a secret


def connect(url_text: str, dbname: str, token: str) -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(url_text)
    return psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        dbname=dbname,
        user=url.username,
        password=token,
        sslmode="verify-full",
        sslrootcert=str(url.query.get("sslrootcert", "system")),
        autocommit=True,
        connect_timeout=10,
    )


def bootstrap() -> None:
    url_text = os.environ["DOWNSTREAM_DATABASE_URL"]
    url = make_url(url_text)
    admin, database = sql.Identifier(str(url.username)), str(url.database)
    app_role, app_oid = os.environ["ZT_DB_APP_ROLE"], os.environ["ZT_DB_APP_OBJECT_ID"]
    app = sql.Identifier(app_role)
    identity = ManagedIdentityCredential(client_id=os.environ["DOWNSTREAM_MANAGED_IDENTITY_CLIENT_ID"])
    token = identity.get_token(TOKEN_SCOPE).token

    with connect(url_text, "postgres", token) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
            # Created by the admin role, so it owns the database and its public schema.
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_role,)).fetchone() is None:
            # Not an admin, no MFA flag: no superuser, no BYPASSRLS; bound to the identity's object id.
            create = "SELECT * FROM pgaadauth_create_principal_with_oid(%s, %s, 'service', false, false)"
            conn.execute(create, (app_role, app_oid))
        try:
            conn.execute("REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC")
        except psycopg.errors.InsufficientPrivilege:
            # Depends on the rights Azure gives the Entra administrator; the app's role needs none of them.
            print("db_bootstrap: could not revoke PUBLIC's rights on postgres (not the owner)", file=sys.stderr)

    with connect(url_text, database, token) as conn:
        for statement in (
            "REVOKE ALL ON DATABASE {db} FROM PUBLIC",
            # Connect, and nothing else: no temporary tables either.
            "REVOKE ALL ON DATABASE {db} FROM {app}",
            "GRANT CONNECT ON DATABASE {db} TO {app}",
            "REVOKE ALL ON SCHEMA public FROM PUBLIC",
            "GRANT USAGE ON SCHEMA public TO {app}",
            # Tables later migrations create (as the admin role) are covered without a new grant.
            "ALTER DEFAULT PRIVILEGES FOR ROLE {admin} IN SCHEMA public "
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {admin} IN SCHEMA public GRANT USAGE ON SEQUENCES TO {app}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
        ):
            conn.execute(sql.SQL(statement).format(db=sql.Identifier(database), admin=admin, app=app))


if __name__ == "__main__":
    bootstrap()
    from downstream_api.migrate import main

    raise SystemExit(main())
