"""In-process downstream-api with tokens minted here, against a fake identity provider.

The fake provider answers the discovery document and the key set through httpx.MockTransport, so
the real KeySet (discovery, caching, refresh) and the real TokenValidator do the checking; only
the network is simulated. Each test gets its own database: a SQLite file, or for the data tests
(marked `both_backends`) also a fresh database in a private PostgreSQL 15 cluster (devtools.postgres).
PostgreSQL missing is an error, never a skip: `make test` must prove the data tier on both.

Here the PostgreSQL tests connect as the bootstrap superuser over the cluster's owner-only unix
socket: they check what the data tier does with rows. How the cluster admits only tokens, and the
least privilege of downstream-api's role, are tested over TCP in tests/postgres.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devtools.ports import free_port
from devtools.postgres import SUPERUSER, Cluster
from downstream_api.main import create_app
from downstream_api.settings import API_APP_ID, DOWNSTREAM_API_APP_ID, Settings
from fastapi.testclient import TestClient
from zerotrust.settings import HOME_TENANT_ID

from tests.support.tokens import STANDALONE_KID, FakeProvider, Issuer, apis_at

AUTHORITY_HOST = "https://login.example.test"
AUTHORITY = f"{AUTHORITY_HOST}/{HOME_TENANT_ID}"
OTHER_TENANT_ID = "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
WEB_APP_ID = "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"
ALICE = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"
BOB = "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"
KID = STANDALONE_KID
DOWNSTREAM = apis_at("https://api.test", "https://downstream.test")["downstream-api"]
assert DOWNSTREAM.app_id == DOWNSTREAM_API_APP_ID and DOWNSTREAM.caller == API_APP_ID


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    return Issuer.standalone(AUTHORITY_HOST)


Mint = Callable[..., str]


@pytest.fixture(scope="session")
def mint(issuer: Issuer) -> Mint:
    """An access token as the api's on-behalf-of token for alice would be; override any claim,
    or drop one with `claim=None`. `key=` and `headers=` sign differently."""

    def make(
        *, key: Any = None, headers: dict[str, Any] | None = None, algorithm: str = "RS256", **overrides: Any
    ) -> str:
        dropped = tuple(name for name, value in overrides.items() if value is None)
        claims = {"scp": "Records.ReadWrite", "sub": "alice-pairwise-sub", "uti": uuid.uuid4().hex, **overrides}
        kid = (headers or {}).get("kid", KID)
        extra = {k: v for k, v in (headers or {}).items() if k != "kid"}
        # A kid the provider does not publish still gets a signature: the provider's own key's.
        signing = key if key is not None else issuer.private_key(KID)
        return issuer.token(DOWNSTREAM, drop=dropped, kid=kid, alg=algorithm, key=signing, headers=extra, **claims)

    return make


@pytest.fixture
def provider(issuer: Issuer) -> FakeProvider:
    return FakeProvider(issuer)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """sqlite unless a test is parametrized with `both_backends`."""
    return str(getattr(request, "param", "sqlite"))


both_backends = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # No LDAP responder: nothing logs in over TCP here, only the superuser over the socket.
    cluster = Cluster(tmp_path_factory.mktemp("pg") / "postgres", free_port(), free_port()).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'downstream' / 'records.db'}"
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"test_{uuid.uuid4().hex[:16]}"
    with cluster.superuser() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://{SUPERUSER}@/{name}?host={cluster.socket_dir}&port={cluster.port}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        authority=AUTHORITY, state_dir=tmp_path / "downstream", database_url=database_url, database_token_auth=False
    )


AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(provider: FakeProvider, tmp_path: Path, database_url: str) -> Iterator[AppFactory]:
    """Start an app (lifespan and all) whose key set reads `provider`; extra kwargs go to Settings."""
    clients: list[TestClient] = []

    def start(**settings: Any) -> TestClient:
        settings.setdefault("authority", AUTHORITY)
        settings.setdefault("state_dir", tmp_path / "downstream")
        settings.setdefault("database_url", database_url)
        # The superuser over the owner-only socket (see the module docstring); SQLite ignores it.
        settings.setdefault("database_token_auth", False)
        configured = Settings(**settings)
        app = create_app(configured, key_fetch=provider.fetch)
        # Addressed as configured: any other Host is refused (zerotrust.hosts).
        client = TestClient(app, raise_server_exceptions=False, base_url=configured.public_base_url)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    return make_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def as_user(mint: Mint) -> Callable[..., dict[str, str]]:
    """Authorization headers for a user: as_user(BOB), as_user(scp="Records.Read"), ..."""

    def headers(oid: str = ALICE, **claims: Any) -> dict[str, str]:
        return bearer(mint(oid=oid, **claims))

    return headers
