"""Settings: local defaults that match the manifest, and values refused in production."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from downstream_api import settings as settings_module
from downstream_api.settings import Settings
from pydantic import ValidationError

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_AUTHORITY = "https://login.microsoftonline.com/11111111-2222-4333-8444-555555555555"
HOME = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
POSTGRES = "postgresql+psycopg://downstream-api@db.example.test:5432/records?sslmode=verify-full"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DOWNSTREAM_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_manifests_ids_so_they_never_drift() -> None:
    manifest = yaml.safe_load((REPO / "infra" / "registrations.yaml").read_text())
    directory = yaml.safe_load((REPO / "identity-emulator" / "demo" / "directory.yaml").read_text())
    apps = manifest["applications"]
    home = directory["tenants"][directory["home_tenant"]]["tenant_id"]
    s = Settings()
    assert s.client_id == apps["downstream-api"]["application_id"]
    assert s.allowed_client_ids == (apps["api"]["application_id"],)
    assert s.tenant_id == home
    assert s.authority == f"https://localhost:8443/{home}"
    # Only the api may call on a user's behalf, as the manifest pre-authorizes it.
    assert [p["application"] for p in apps["downstream-api"]["pre_authorized_applications"]] == ["api"]


def test_local_defaults() -> None:
    s = Settings()
    assert s.environment == "development"
    assert (s.host, s.port) == ("127.0.0.1", 8002)
    assert s.state_dir == REPO / ".local" / "downstream"
    assert s.database_url == f"sqlite:///{REPO / '.local' / 'downstream' / 'records.db'}"
    assert s.tenants == (s.tenant_id,)


def test_azure_client_id_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # DefaultAzureCredential takes AZURE_CLIENT_ID for a user-assigned managed identity.
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-4000-8000-000000000000")
    monkeypatch.setenv("CLIENT_ID", "00000000-0000-4000-8000-000000000001")
    assert Settings().client_id == settings_module.DOWNSTREAM_API_APP_ID
    assert "AZURE_CLIENT_ID" not in Path(settings_module.__file__).read_text().replace(
        "Names never used here: AZURE_CLIENT_ID", ""
    )


def test_environment_variables_with_the_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    monkeypatch.setenv("DOWNSTREAM_ALLOWED_CLIENT_IDS", f"{a}, {b}")
    monkeypatch.setenv("DOWNSTREAM_ALLOWED_TENANTS", f"{HOME}, {b}")
    monkeypatch.setenv("DOWNSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DOWNSTREAM_PORT", "9002")
    s = Settings()
    assert s.allowed_client_ids == (a, b)
    assert s.tenants == (HOME, b) and s.tenant_id == HOME
    assert s.database_url == f"sqlite:///{tmp_path / 'records.db'}"
    assert s.port == 9002
    # JSON lists too, as pydantic-settings reads list settings elsewhere.
    monkeypatch.setenv("DOWNSTREAM_ALLOWED_CLIENT_IDS", f'["{b}"]')
    assert Settings().allowed_client_ids == (b,)


@pytest.mark.parametrize(
    "authority",
    [
        "http://localhost:8443/9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d",
        "https://login.microsoftonline.com/common",
        "https://login.microsoftonline.com/organizations",
        "https://login.microsoftonline.com/contoso.onmicrosoft.com",
        "https://login.microsoftonline.com/",
        "https://login.microsoftonline.com/9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d/v2.0",
        "login.microsoftonline.com/9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d",
    ],
)
def test_authority_must_be_https_and_tenant_specific(authority: str) -> None:
    with pytest.raises(ValidationError, match="authority"):
        Settings(authority=authority)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_id", "api://56416278-656a-410f-9888-db490850ca20"),
        ("allowed_client_ids", ()),
        ("allowed_client_ids", ("*",)),
        ("allowed_tenants", ("common",)),
        ("database_url", "sqlite://"),
        ("database_url", "sqlite:///:memory:"),
        ("database_url", "not a url"),
        ("database_pool_recycle_seconds", 0),
        ("database_connect_timeout_seconds", -1),
        ("managed_identity_client_id", "downstream-api"),
    ],
)
def test_malformed_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_production_refuses_local_authority_sqlite_and_passwords() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(environment="production")
    message = str(refused.value)
    assert "DOWNSTREAM_AUTHORITY points at this machine" in message
    assert "DOWNSTREAM_DATABASE_URL is SQLite" in message
    with pytest.raises(ValidationError, match="holds a password"):
        Settings(
            environment="production",
            authority=PRODUCTION_AUTHORITY,
            database_url="postgresql+psycopg://u:secret@db.example.test/records",  # pragma: allowlist secret
        )
    with pytest.raises(ValidationError, match="points at this machine"):
        Settings(
            environment="production",
            authority="https://127.0.0.1:8443/11111111-2222-4333-8444-555555555555",
            database_url=POSTGRES,
        )


def test_production_accepts_entra_and_postgres_with_token_auth() -> None:
    s = Settings(
        environment="production",
        authority=PRODUCTION_AUTHORITY,
        database_url=POSTGRES,
        migrate_on_start=False,
        instance_discovery=True,
        public_url="https://downstream.example",
    )
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.tenant_id == "11111111-2222-4333-8444-555555555555"


def test_production_keeps_the_database_credential_a_token_and_connections_younger_than_it() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(
            environment="production",
            authority=PRODUCTION_AUTHORITY,
            database_url=POSTGRES,
            database_token_auth=False,
            database_pool_recycle_seconds=7200,
        )
    message = str(refused.value)
    assert "DOWNSTREAM_DATABASE_TOKEN_AUTH is off" in message
    assert "DOWNSTREAM_DATABASE_POOL_RECYCLE_SECONDS exceeds an hour" in message
    assert "DOWNSTREAM_MIGRATE_ON_START is on" in message
    s = Settings(
        environment="production",
        authority=PRODUCTION_AUTHORITY,
        database_url=POSTGRES,
        migrate_on_start=False,
        instance_discovery=True,
        public_url="https://downstream.example",
    )
    assert s.database_token_auth and s.database_pool_recycle_seconds < 3600


@pytest.mark.parametrize(
    "query",
    ["", "?sslmode=require", "?sslmode=prefer", "?sslmode=disable", "?sslmode=verify-ca", "?sslmode=VERIFY-FULL"],
)
def test_a_postgres_url_without_verify_full_is_refused_where_the_token_is_the_password(query: str) -> None:
    # The token would cross the network in clear, or to a server whose name nobody checked: in every environment.
    with pytest.raises(ValidationError, match="sslmode=verify-full"):
        Settings(database_url=f"postgresql+psycopg://downstream-api@db.example.test/records{query}")
    # Over a unix socket the operating system authenticates (the data tests): no token, no TLS needed.
    socket = f"postgresql+psycopg://postgres@/records?host=/tmp/socket{query.replace('?', '&')}"
    Settings(database_url=socket, database_token_auth=False)
