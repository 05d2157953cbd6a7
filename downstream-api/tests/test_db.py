"""The schema comes from the migrations, and the migrations match the models."""

from __future__ import annotations

from pathlib import Path

import downstream_api.db
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from downstream_api.db import Base, make_engine, migrate
from sqlalchemy import inspect


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)  # a restart: already at head, nothing to do
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        config = Config()
        config.set_main_option("script_location", str(Path(downstream_api.db.__file__).parent / "migrations"))
        # One head: migrations added by parallel work must be chained, never left as branches.
        (head,) = ScriptDirectory.from_config(config).get_heads()
        assert MigrationContext.configure(connection).get_current_revision() == head
    assert {ix["name"] for ix in inspect(engine).get_indexes("records")} == {"ix_records_owner", "ix_records_shared"}
    engine.dispose()


def test_sqlite_folder_and_file_are_created_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "records.db"
    make_engine(f"sqlite:///{target}").dispose()
    assert target.exists()
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.parent.stat().st_mode & 0o777 == 0o700
