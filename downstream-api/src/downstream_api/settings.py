"""Configuration of downstream-api: environment variables prefixed DOWNSTREAM_.

Every setting has a safe default for a local run against the identity emulator. With
DOWNSTREAM_ENVIRONMENT=production the values that only make sense on a laptop are refused at
startup, with a message naming the setting.

Decision on SQLite: allowed in development, refused in production. In Azure the service runs as
several replicas whose disks are neither shared nor kept, and the data tier's credential must be a
token from the service's managed identity (Azure Database for PostgreSQL with Entra-only auth),
which a file cannot check.

Names never used here: AZURE_CLIENT_ID (DefaultAzureCredential reads it as a user-assigned managed
identity) and any other AZURE_* variable; the env prefix keeps this class from reading them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from zerotrust.settings import ApiSettings, Guid, GuidList

_REPO = Path(__file__).resolve().parents[3]

# The emulator's registrations (infra/registrations.yaml): in Azure, Entra assigns other ids.
DOWNSTREAM_API_APP_ID = "56416278-656a-410f-9888-db490850ca20"
API_APP_ID = "f6016428-a480-44ec-bc23-042b445465fc"
API_APP_ONLY_APP_ID = "d81fb773-8357-4308-90ea-443618d80b43"

DEFAULT_STATE_DIR = _REPO / ".local" / "downstream"

# Entra access tokens live at least 60 minutes: recycle pooled connections well before.
MAX_POOL_RECYCLE_SECONDS = 3600


class Settings(ApiSettings):
    model_config = SettingsConfigDict(env_prefix="DOWNSTREAM_")

    client_id: Guid = DOWNSTREAM_API_APP_ID
    # Calling applications (azp) allowed at all: only the api, which calls on-behalf-of its user.
    allowed_client_ids: GuidList = (API_APP_ID,)
    # zt: developer-strategy-application-permissions
    # The api as itself, for its app-only routes (tenant report, provisioning): its app-only registration,
    # never the client id that calls on users' behalf (each list holds for its token type only).
    app_only_client_ids: GuidList = (API_APP_ONLY_APP_ID,)
    port: int = Field(default=8002, ge=1, le=65535)
    # -- data -----------------------------------------------------------------------------------
    # Local state (the SQLite file by default); created owner-only (0700).
    state_dir: Path = DEFAULT_STATE_DIR
    # Default: sqlite:///<state_dir>/records.db. For PostgreSQL (postgresql+psycopg://<role>@host/db)
    # give no password: the credential is the managed identity's token, fetched per new connection.
    database_url: str = ""
    # PostgreSQL: pooled connections are closed and reopened (with a fresh token) after this long.
    # Entra tokens live 60-90 minutes; the server checks the token only when a connection opens, so
    # this bounds how long a session outlives the identity's token (and a revoked identity).
    database_pool_recycle_seconds: int = Field(default=1800, gt=0)
    # Fail fast when the database does not answer: a request gets a 503, not a hung worker.
    database_connect_timeout_seconds: int = Field(default=5, gt=0)
    # Run the schema migrations at startup (SQLite, local runs). With PostgreSQL the migrations run
    # beforehand under the admin identity (python -m downstream_api.migrate); this identity may only
    # read and write rows, so it must not try.
    migrate_on_start: bool = True
    # PostgreSQL: each connection's password is the managed identity's token. Off only for a
    # connection the operating system authenticates (a unix socket, in tests); refused in production.
    database_token_auth: bool = True

    @model_validator(mode="before")
    @classmethod
    def _default_database(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("database_url"):
            state_dir = Path(data.get("state_dir") or DEFAULT_STATE_DIR)
            data = {**data, "database_url": f"sqlite:///{state_dir / 'records.db'}"}
        return data

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL (e.g. sqlite:///path/to/records.db)") from None
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite database would lose every record at restart; name a file")
        return value

    @model_validator(mode="after")
    def _tls_to_the_database(self) -> Settings:
        # The token is the password: it never crosses a network in clear, nor to a server whose name and
        # certificate were not checked (Azure Database for PostgreSQL requires TLS; verify-full checks both).
        url = make_url(self.database_url)
        if (
            url.get_backend_name() == "postgresql"
            and self.database_token_auth
            and url.query.get("sslmode") != "verify-full"
        ):
            raise ValueError(
                "DOWNSTREAM_DATABASE_URL must end in ?sslmode=verify-full (with sslrootcert=<CA file> where the "
                "server's CA is not the system's): the managed identity's token is the password"
            )
        return self

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite":
            problems.append(
                "DOWNSTREAM_DATABASE_URL is SQLite; production uses PostgreSQL with a managed "
                "identity token (replicas share no disk)"
            )
        if url.password is not None:
            problems.append(
                "DOWNSTREAM_DATABASE_URL holds a password; the database credential is the "
                "managed identity's token, never a stored secret"
            )
        if self.migrate_on_start:
            problems.append(
                "DOWNSTREAM_MIGRATE_ON_START is on; the schema is migrated beforehand under the database's "
                "admin identity (python -m downstream_api.migrate), this service's identity only reads and writes rows"
            )
        if not self.database_token_auth:
            problems.append(
                "DOWNSTREAM_DATABASE_TOKEN_AUTH is off; the database credential is the managed identity's token"
            )
        if url.get_backend_name() == "postgresql" and self.database_pool_recycle_seconds > MAX_POOL_RECYCLE_SECONDS:
            problems.append(
                "DOWNSTREAM_DATABASE_POOL_RECYCLE_SECONDS exceeds an hour; keep connections younger than "
                "the managed identity's token"
            )
        return problems
