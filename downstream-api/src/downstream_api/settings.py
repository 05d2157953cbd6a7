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

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from zerotrust.ids import OBJECT_ID

_REPO = Path(__file__).resolve().parents[3]

# The emulator's registrations (infra/registrations.yaml) and home tenant (contoso): in Azure,
# Entra assigns other ids and they come from configuration.
HOME_TENANT_ID = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
DOWNSTREAM_API_APP_ID = "56416278-656a-410f-9888-db490850ca20"
API_APP_ID = "f6016428-a480-44ec-bc23-042b445465fc"

DEFAULT_STATE_DIR = _REPO / ".local" / "downstream"

# Entra access tokens live at least 60 minutes: recycle pooled connections well before.
MAX_POOL_RECYCLE_SECONDS = 3600


def _is_local_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ids(value: object) -> object:
    """From the environment: `a,b`, `a b` or a JSON list `["a", "b"]`; from code: any sequence."""
    if isinstance(value, str):
        if value.strip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("is not a JSON list of ids") from None
        return [v for v in re.split(r"[,\s]+", value.strip()) if v]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOWNSTREAM_", frozen=True)

    environment: Literal["development", "production"] = "development"

    # -- identity -------------------------------------------------------------------------------
    # The tenant-specific authority; its last segment is the home tenant id, and the issuer every
    # accepted token must carry is `<scheme>://<host>/<tenant-id>/v2.0`.
    authority: str = f"https://localhost:8443/{HOME_TENANT_ID}"
    # This API's application id: the only audience accepted.
    client_id: str = DOWNSTREAM_API_APP_ID
    # Calling applications (azp) allowed at all: only the api, which calls on-behalf-of its user.
    allowed_client_ids: Annotated[tuple[str, ...], NoDecode] = (API_APP_ID,)
    # zt: developer-strategy-application-permissions - calling applications allowed app-only
    # tokens: the api again, as itself, for its app-only routes (tenant report, provisioning).
    app_only_client_ids: Annotated[tuple[str, ...], NoDecode] = (API_APP_ID,)
    # zt: identity-supported-account-types
    # Other tenants whose users may call (multi-tenant mode); empty: the authority's tenant only.
    extra_tenant_ids: Annotated[tuple[str, ...], NoDecode] = ()
    # -- calls made on the user's behalf (group overage: Microsoft Graph) -------------------------
    # Where Graph is: https://graph.microsoft.com in Azure; `zt run` points it at the emulator.
    # Configuration only: a URL inside a token (_claim_sources) is never used.
    graph_url: str = "https://graph.microsoft.com"
    # MSAL's instance discovery asks Microsoft's cloud about the authority host; off for the emulator.
    instance_discovery: bool = False
    # -- data -----------------------------------------------------------------------------------
    # Local state (the SQLite file by default); created owner-only (0700).
    state_dir: Path = DEFAULT_STATE_DIR
    # Default: sqlite:///<state_dir>/records.db. For PostgreSQL (postgresql+psycopg://<role>@host/db)
    # give no password: the credential is the managed identity's token, fetched per new connection.
    database_url: str = ""
    # PostgreSQL: pooled connections are closed and reopened (with a fresh token) after this long.
    # Entra tokens live 60-90 minutes; the server checks the token only when a connection opens, so
    # this bounds how long a session outlives the identity's token (and a revoked identity).
    database_pool_recycle_seconds: int = 1800
    # Fail fast when the database does not answer: a request gets a 503, not a hung worker.
    database_connect_timeout_seconds: int = 5
    # Run the schema migrations at startup (SQLite, local runs). With PostgreSQL the migrations run
    # beforehand under the admin identity (python -m downstream_api.migrate); this identity may only
    # read and write rows, so it must not try.
    migrate_on_start: bool = True
    # Client id of the user-assigned managed identity (database token and the federated credential
    # for Graph); empty: the one the platform provides (locally the identity header selects it).
    managed_identity_client_id: str = ""
    # PostgreSQL: each connection's password is the managed identity's token. Off only for a
    # connection the operating system authenticates (a unix socket, in tests); refused in production.
    database_token_auth: bool = True
    # zt: overprivileged-permissions - one JSON line per authorized request (zerotrust.audit);
    # unset: no audit file. `zt run` sets it under .local/audit/.
    audit_log: Path | None = None

    # -- serving (python -m downstream_api) -----------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8002
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="before")
    @classmethod
    def _default_database(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("database_url"):
            state_dir = Path(data.get("state_dir") or DEFAULT_STATE_DIR)
            data = {**data, "database_url": f"sqlite:///{state_dir / 'records.db'}"}
        return data

    @field_validator("allowed_client_ids", "app_only_client_ids", "extra_tenant_ids", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _ids(value)

    @field_validator("client_id")
    @classmethod
    def _guid(cls, value: str) -> str:
        if not OBJECT_ID.match(value):
            raise ValueError("must be an application id (a lowercase GUID)")
        return value

    @field_validator("allowed_client_ids", "app_only_client_ids", "extra_tenant_ids")
    @classmethod
    def _guids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not OBJECT_ID.match(item):
                raise ValueError(f"{item[:60]!r} is not a lowercase GUID")
        return value

    @field_validator("database_pool_recycle_seconds", "database_connect_timeout_seconds")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("managed_identity_client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if value and not OBJECT_ID.match(value):
            raise ValueError("must be the managed identity's client id (a lowercase GUID) or empty")
        return value

    @field_validator("allowed_client_ids")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one calling application (the api's application id)")
        return value

    @field_validator("authority")
    @classmethod
    def _authority(cls, value: str) -> str:
        parts = urlsplit(value.rstrip("/"))
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https URL, e.g. https://login.microsoftonline.com/<tenant-id>")
        if len(segments) != 1 or not OBJECT_ID.match(segments[0]) or parts.query or parts.fragment:
            # common/organizations would make the issuer a template; this API is single-tenant by
            # default and names any other allowed tenant explicitly (extra_tenant_ids).
            raise ValueError("must end in the tenant id, e.g. https://login.microsoftonline.com/<tenant-id>")
        return value.rstrip("/")

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
    def _production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if _is_local_host(self.authority_host_name):
            problems.append(
                "DOWNSTREAM_AUTHORITY points at this machine (the identity emulator); use your Entra ID authority"
            )
        graph = urlsplit(self.graph_url)
        if graph.scheme != "https" or _is_local_host(graph.hostname or ""):
            problems.append("DOWNSTREAM_GRAPH_URL must be Microsoft Graph over https (https://graph.microsoft.com)")
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
        if problems:
            raise ValueError("refused in production: " + "; ".join(problems))
        return self

    # -- derived --------------------------------------------------------------------------------

    @property
    def authority_host(self) -> str:
        """`https://host[:port]`, the part of the issuer before the tenant id."""
        parts = urlsplit(self.authority)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def authority_host_name(self) -> str:
        return urlsplit(self.authority).hostname or ""

    @property
    def tenant_id(self) -> str:
        return urlsplit(self.authority).path.strip("/")

    @property
    def allowed_tenant_ids(self) -> tuple[str, ...]:
        return (self.tenant_id, *(t for t in self.extra_tenant_ids if t != self.tenant_id))
