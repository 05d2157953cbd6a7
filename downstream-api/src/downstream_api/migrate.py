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
from sqlalchemy.exc import DBAPIError
from zerotrust.serve import load_settings

from .db import engine_for, migrate
from .settings import Settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(Settings, "downstream_api.migrate", "DOWNSTREAM")
    engine = engine_for(settings)
    try:
        migrate(engine)
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
