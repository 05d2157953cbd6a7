"""`python -m downstream_api.migrate`: bring the schema to the latest revision, then exit.

With PostgreSQL this runs before the service starts, under the database's admin identity (its own
managed identity and DOWNSTREAM_DATABASE_URL naming the admin role): the service's identity may only
read and write rows, so a compromised service cannot change or drop the schema. In Azure this is a
deployment step (e.g. a Container Apps job with the admin identity).
"""

from __future__ import annotations

import logging
import sys

from azure_postgresql_auth.errors import AzurePgEntraError
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from zerotrust.serve import load_settings

from .db import engine_for, migrate
from .settings import Settings


def _lock_version_table(engine: Engine) -> None:
    """The schema's version is the admin's: whoever got row rights through the admin's default
    privileges may read it, never change it (a service that could would fake or block migrations)."""
    if engine.dialect.name != "postgresql":
        return
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as connection:
        grantees = connection.execute(
            text(
                "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
                "WHERE table_name = 'alembic_version' AND grantee <> current_user AND privilege_type <> 'SELECT'"
            )
        ).scalars()
        for grantee in list(grantees):
            connection.execute(
                text(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {quote(grantee)}")
            )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # This is the migration itself: the service's own start-up migration setting does not apply.
    settings = load_settings(lambda: Settings(migrate_on_start=False), "downstream_api.migrate", "DOWNSTREAM")
    engine = engine_for(settings)
    try:
        migrate(engine)
        _lock_version_table(engine)
    except (DBAPIError, AzurePgEntraError) as exc:
        # The cause, not a trace: which database and why (no credential is ever in the URL).
        cause = exc.__cause__ or exc
        print(f"downstream_api.migrate: could not migrate {engine.url!r}: {cause}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"downstream_api.migrate: {engine.url!r} is at the latest revision")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
