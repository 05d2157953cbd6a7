"""The data tier: the records table, the engine, and how routes reach the database.

Sync SQLAlchemy, each unit of work run in a worker thread (anyio.to_thread), rather than an async
engine: one code path for SQLite (standard library) and PostgreSQL (psycopg); Alembic runs
migrations on a sync connection anyway; and the database credential of the PostgreSQL issue is a
managed-identity token obtained by azure-identity's sync credential when a connection is opened,
which may block on the network: inside a worker thread it never stalls the event loop.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import Boolean, DateTime, Engine, Index, String, UniqueConstraint, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

P = ParamSpec("P")
T = TypeVar("T")

# Gives the database's credential each time a connection is opened (PostgreSQL: a fresh Entra
# token from the managed identity, so a pooled engine never holds an expired password).
PasswordProvider = Callable[[], str]

TITLE_MAX = 200
USER_NAME_MAX = 256
DISPLAY_NAME_MAX = 256


class Base(DeclarativeBase):
    pass


class Record(Base):
    __tablename__ = "records"

    # A random uuid4: says nothing about who made it, when, or how many records exist.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # zt: zero-trust-token-customization
    # The owner is the token's tid + oid: immutable, never reassigned. Never the UPN or email,
    # which change (renames, marriages, domain moves) and could be handed to someone else.
    tenant_id: Mapped[str] = mapped_column(String(36))
    owner_oid: Mapped[str] = mapped_column(String(36))
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_records_owner", "tenant_id", "owner_oid", "created_at"),)


class ProvisionedUser(Base):
    """A user as the provisioning service (SCIM) declared them for one tenant.

    # zt: identity-standards-based-development-methodologies
    Keyed on the tenant id + the user's Entra object id (SCIM externalId), never on userName or
    e-mail, which change and can be reassigned. `id` is this service's own random SCIM id.
    """

    __tablename__ = "provisioned_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    object_id: Mapped[str] = mapped_column(String(36))
    user_name: Mapped[str] = mapped_column(String(USER_NAME_MAX))
    display_name: Mapped[str | None] = mapped_column(String(DISPLAY_NAME_MAX), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("tenant_id", "object_id", name="uq_provisioned_users_tenant_object"),
        Index("ix_provisioned_users_name", "tenant_id", "user_name"),
    )


def utc(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; every value stored here is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def make_engine(database_url: str, *, password_provider: PasswordProvider | None = None) -> Engine:
    """An engine whose credential comes from configuration.

    SQLite: the credential is file access; the folder is created owner-only (0700) and the file
    0600. PostgreSQL (a later issue): pass `password_provider` (e.g. a managed-identity token
    getter); it is called for every new connection, never stored in the URL.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url.database or "")
    engine = create_engine(url, pool_pre_ping=True)
    if password_provider is not None:
        provider = password_provider

        @event.listens_for(engine, "do_connect")
        def _fresh_password(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
            cparams["password"] = provider()

    return engine


def _sqlite_engine(database: str) -> Engine:
    path = Path(database)
    # Created owner-only; an existing folder is left as its owner set it.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    # File databases get a QueuePool and check_same_thread=False from SQLAlchemy, as worker threads need.
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: readers don't wait for the writer; busy_timeout: writers wait instead of failing.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


class Database:
    """The engine plus a way for async routes to run a unit of work off the event loop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    async def run(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`work(session, ...)` in a worker thread, in one transaction (committed unless it raises)."""

        def unit() -> T:
            with self._sessions.begin() as session:
                return work(session, *args, **kwargs)

        return await anyio.to_thread.run_sync(unit)

    def dispose(self) -> None:
        self.engine.dispose()


def migrate(engine: Engine) -> None:
    """`alembic upgrade head` against this engine (programmatic; no alembic.ini needed)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]
