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


@pytest.mark.parametrize("kept", [True, False], ids=["kept-trace", "unsampled-trace"])
def test_a_kept_trace_reaches_the_database_as_a_comment_and_an_unsampled_one_leaves_the_sql_alone(
    tmp_path: Path, kept: bool
) -> None:
    from downstream_api.db import Database
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from sqlalchemy import event, text
    from zerotrust.tracing import TraceRequests, Tracing

    db = Database(make_engine(f"sqlite:///{tmp_path / 'records.db'}"))
    seen: list[str] = []
    event.listen(db.engine, "after_cursor_execute", lambda _c, _cur, statement, *_: seen.append(statement))
    app = FastAPI()

    @app.get("/one")
    async def one() -> int:
        return await db.run(lambda session: int(session.scalar(text("SELECT 1"))))

    # Kept: a trace file to export to and room for every trace; unsampled: nothing exports, nothing is kept.
    tracing = Tracing("downstream-api", trace_file=tmp_path / "spans.jsonl") if kept else Tracing("downstream-api")
    app.add_middleware(TraceRequests, tracing=tracing)
    response = TestClient(app).get("/one")
    assert response.status_code == 200
    trace_id = response.headers["x-correlation-id"]
    (statement,) = [s for s in seen if s.startswith("SELECT 1")]
    if kept:
        assert statement.startswith("SELECT 1 /*traceparent='00-" + trace_id + "-") and statement.endswith("'*/")
        flags = statement.rsplit("-", 1)[1].removesuffix("'*/")
        assert int(flags, 16) & 1, "the trace is marked sampled"
    else:
        # The same text every time, so SQLite's statement cache (PostgreSQL's prepared statements) serve it.
        assert statement == "SELECT 1"
    db.dispose()
