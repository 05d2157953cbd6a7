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
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import anyio.to_thread
from azure.core.credentials import TokenCredential
from azure_postgresql_auth.sqlalchemy import enable_entra_authentication
from sqlalchemy import (
    BindParameter,
    Boolean,
    DateTime,
    Engine,
    Index,
    ScalarResult,
    Select,
    String,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    event,
    or_,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from zerotrust.paging import Page
from zerotrust.tracing import client_span, outgoing, recorded

if TYPE_CHECKING:
    from .settings import Settings

P = ParamSpec("P")
T = TypeVar("T")

TITLE_MAX = 200
# One connection per worker thread that can use it (anyio's default limit is 40): a request never waits
# for, nor opens, a connection beyond the pool (a new PostgreSQL connection is a server process and a
# token check). Tune down where a server's max_connections is shared by many replicas.
POOL_SIZE = 40
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
    # zt: configure-tokens-group-claims-app-roles - the one group (object id, same tenant) the owner
    # shared this record with, or None. Set only by the owner, only with a group they belong to.
    shared_group_id: Mapped[str | None] = mapped_column(String(36), nullable=True, default=None)

    __table_args__ = (
        Index("ix_records_owner", "tenant_id", "owner_oid", "created_at"),
        Index("ix_records_shared", "tenant_id", "shared_group_id"),
    )


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


class PagedQuery:
    """A list's query in creation order, a page at a time: top + 1 records (the one more says another page
    follows; zerotrust.paging.paged), from where the page starts. By key, not offset: no row repeats or goes
    missing. Built once, with bound parameters, and given the values per call: building a SELECT costs
    SQLAlchemy more than SQLite takes to run it."""

    def __init__(self, query: Select[Record]) -> None:
        ordered = (Record.created_at, Record.id)
        self.first = query.order_by(*ordered).limit(bindparam("page_limit"))
        created: BindParameter[dt.datetime] = bindparam("after_created")
        record_id: BindParameter[str] = bindparam("after_id")
        after = or_(Record.created_at > created, and_(Record.created_at == created, Record.id > record_id))
        self.next = query.where(after).order_by(*ordered).limit(bindparam("page_limit"))

    def rows(self, session: Session, page: Page, **values: Any) -> ScalarResult[Record]:
        """The page's records; `values`: the query's own bound parameters."""
        values["page_limit"] = page.top + 1
        if page.after is None:
            return session.scalars(self.first, values)
        values["after_created"], values["after_id"] = page.after
        return session.scalars(self.next, values)


def utc(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; every value stored here is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def make_engine(
    database_url: str,
    *,
    credential: TokenCredential | None = None,
    pool_recycle: int = 1800,
    connect_timeout: int = 5,
) -> Engine:
    """An engine whose credential comes from configuration.

    SQLite: the credential is file access; the folder is created owner-only (0700) and the file
    0600. PostgreSQL: `credential` (the managed identity) gives the password of every new
    connection, an Entra token for Azure Database for PostgreSQL; never stored in the URL.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url.database or "")
    connect_args: dict[str, Any] = {"connect_timeout": connect_timeout}
    if credential is not None:
        connect_args["credential"] = credential
    # zt: identity-non-user-applications
    # Microsoft's azure-postgresql-auth hooks SQLAlchemy's do_connect: for each new pooled
    # connection it asks the credential for a token for https://ossrdbms-aad.database.windows.net
    # and passes it as the password (azure-identity caches the token and renews it before expiry),
    # so no connection is ever opened with a stale token, and none is kept past pool_recycle
    # (well under the token's lifetime). pool_pre_ping drops connections the server closed (restart,
    # failover) instead of failing the request that picks them up.
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=pool_recycle,
        connect_args=connect_args,
        pool_size=POOL_SIZE,
        max_overflow=0,
    )
    if credential is not None:
        enable_entra_authentication(engine)
    return engine


def connecting_identity(settings: Settings) -> str | None:
    """Whose token opens the database's connections: the user-assigned managed identity's client id,
    "system-assigned", or None (SQLite, or a connection the operating system authenticates)."""
    if make_url(settings.database_url).get_backend_name() != "postgresql" or not settings.database_token_auth:
        return None
    return settings.managed_identity_client_id or "system-assigned"


def engine_for(settings: Settings) -> Engine:
    """The engine as configured: for PostgreSQL, authenticated by this service's managed identity."""
    credential = None
    if connecting_identity(settings) is not None:
        from azure.identity import ManagedIdentityCredential

        # zt: identity-non-user-applications
        # The workload's own identity, from the platform (IDENTITY_ENDPOINT/IDENTITY_HEADER on App
        # Service and Container Apps; the emulator locally): no secret anywhere. One retry with a
        # short timeout: an unreachable identity endpoint must give a quick 503, not a request that
        # hangs through azure-core's default backoff; the next request tries again.
        credential = ManagedIdentityCredential(
            client_id=settings.managed_identity_client_id or None,
            retry_total=1,
            retry_backoff_factor=0.2,
            connection_timeout=settings.database_connect_timeout_seconds,
            read_timeout=settings.database_connect_timeout_seconds,
        )
    return make_engine(
        settings.database_url,
        credential=credential,
        pool_recycle=settings.database_pool_recycle_seconds,
        connect_timeout=settings.database_connect_timeout_seconds,
    )


def _sqlite_engine(database: str) -> Engine:
    path = Path(database)
    # Created owner-only; an existing folder is left as its owner set it.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    # File databases get a QueuePool and check_same_thread=False from SQLAlchemy, as worker threads need.
    engine = create_engine(f"sqlite:///{path}", pool_size=POOL_SIZE, max_overflow=0)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: readers don't wait for the writer; busy_timeout: writers wait instead of failing.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


# The tenant a transaction works for, read by the row-level security policies (migration 0004).
_DECLARE_TENANT = text("SELECT set_config('app.tenant_id', :tenant, true)")


class Database:
    """The engine plus a way for async routes to run a unit of work off the event loop."""

    def __init__(self, engine: Engine, connecting_identity: str | None = None) -> None:
        self.engine, self.connecting_identity = engine, connecting_identity
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._system = engine.dialect.name
        event.listen(engine, "before_cursor_execute", _traceparent_comment, retval=True)

    async def run(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`work(session, ...)` in a worker thread, in one transaction (committed unless it raises)."""

        def unit() -> T:
            with self._sessions.begin() as session:
                return work(session, *args, **kwargs)

        with client_span(f"{self._system} transaction", **{"db.system": self._system}):
            return await anyio.to_thread.run_sync(unit)

    def declare_tenant(self, session: Session, tenant: str | None) -> None:
        """The tenant (the caller's token's tid) this transaction works for: on PostgreSQL the tables'
        row-level security then shows and takes that tenant's rows alone, whatever a query says; with none
        declared, no tenant's rows. SQLite has no row-level security (and is refused in production)."""
        if tenant is not None and self._system == "postgresql":
            # zt: developer-strategy-authorization-best-practices
            # set_config(..., true) is SET LOCAL with the value as a parameter: it ends with this transaction,
            # never carried into the pooled connection's next use.
            session.execute(_DECLARE_TENANT, {"tenant": tenant})

    def dispose(self) -> None:
        self.engine.dispose()


# zt: identity-iam-development-best-practices
def _traceparent_comment(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
) -> tuple[str, Any]:
    # A kept (sampled) trace reaches the database as a SQL comment (the sqlcommenter convention: Azure Database
    # for PostgreSQL's query store and the server's log show it). Our own span's ids only: hex and dashes.
    # Only a kept one: the comment makes each statement's text new, so the database parses it afresh (SQLite's
    # statement cache and PostgreSQL's prepared statements miss), and for a trace nobody can see that buys nothing.
    if not recorded():
        return statement, parameters
    parent = outgoing().get("traceparent")
    return (f"{statement} /*traceparent='{parent}'*/" if parent else statement), parameters


def migrate(engine: Engine) -> None:
    """`alembic upgrade head` against this engine (programmatic; no alembic.ini needed)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
