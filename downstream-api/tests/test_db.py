"""The schema comes from the migrations, and the migrations match the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from downstream_api.db import Base, make_engine, migrate
from sqlalchemy import inspect


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__code__.co_filename).parent / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, "the migrations must form one chain (several heads: rechain down_revision)"
    return head


def test_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'records.db'}")
    migrate(engine)
    migrate(engine)  # a restart: already at head, nothing to do
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        # Whatever the newest revision is: one head, and the database is at it.
        assert MigrationContext.configure(connection).get_current_revision() == _head()
    assert {ix["name"] for ix in inspect(engine).get_indexes("records")} == {"ix_records_owner"}
    engine.dispose()


def test_sqlite_folder_and_file_are_created_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "records.db"
    make_engine(f"sqlite:///{target}").dispose()
    assert target.exists()
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.parent.stat().st_mode & 0o777 == 0o700
