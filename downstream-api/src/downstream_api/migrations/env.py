"""Alembic environment: migrations run at startup on the app's own connection (see db.migrate).

For a developer generating a revision, without the app:
    python3 -m uv run alembic -c downstream-api/alembic.ini revision --autogenerate -m "..."
"""

from __future__ import annotations

from alembic import context
from downstream_api.db import Base, make_engine
from downstream_api.settings import Settings
from sqlalchemy.engine import Connection


def run(connection: Connection) -> None:
    # render_as_batch: SQLite can't ALTER most things in place; batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(Settings().database_url)
    with engine.begin() as own:
        run(own)
    engine.dispose()
