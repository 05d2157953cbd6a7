"""A private PostgreSQL 15 cluster that admits only managed-identity tokens, checked against an emulator.

`pg` is the session's (on the session emulator); `pg_factory(emulator)` builds one for an emulator
with other settings (short-lived tokens). Each has its own LDAP token responder, in this process so
tests can read what it decided. PostgreSQL missing is an error here, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from devtools.layout import run_migration
from devtools.paths import repo_root
from devtools.pgtoken import OSSRDBMS_AUDIENCE, TokenChecker, TokenResponder, role_map
from devtools.ports import free_port
from devtools.postgres import DATABASE, Cluster
from devtools.tls import ca_env

from tests.support.launch import LiveEmulator
from tests.support.tokens import Issuer, apis_at


@dataclass
class PgStack:
    emulator: LiveEmulator
    responder: TokenResponder
    cluster: Cluster

    def token(self, identity: str, resource: str = OSSRDBMS_AUDIENCE) -> str:
        """A managed identity's token from the emulator's managed-identity endpoint (App Service protocol)."""
        return self.emulator.managed_identity_token(identity, resource)

    def connect(
        self, role: str, password: str | None, *, dbname: str = DATABASE, sslmode: str = "verify-full"
    ) -> psycopg.Connection[tuple[object, ...]]:
        """Over TCP, as any client would: the only way in besides the superuser's socket. TLS, the server's
        certificate and name checked against the dev CA, unless `sslmode` says otherwise."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.cluster.port,
            user=role,
            password=password,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
            sslmode=sslmode,
            sslrootcert=str(self.emulator.tls.ca_cert),
        )

    def migrate(self) -> None:
        """`python -m downstream_api.migrate` under the database-admin identity, as `zt run` does."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOWNSTREAM_")}
        run_migration(
            {
                **env,
                **ca_env(self.emulator.tls),
                **self.emulator.managed_identity_env("database-admin"),
                "DOWNSTREAM_AUTHORITY": self.emulator.authority(),
                "DOWNSTREAM_DATABASE_URL": self.cluster.url("database-admin"),
            }
        )

    def downstream_env(self, state_dir: Path, **settings: str) -> dict[str, str]:
        """Environment of a downstream-api process on this cluster, with its own managed identity."""
        return {
            **self.emulator.managed_identity_env("downstream-api"),
            "DOWNSTREAM_AUTHORITY": self.emulator.authority(),
            "DOWNSTREAM_STATE_DIR": str(state_dir),
            "DOWNSTREAM_DATABASE_URL": self.cluster.url(),
            "DOWNSTREAM_MIGRATE_ON_START": "false",
            "DOWNSTREAM_LOG_LEVEL": "warning",
            **{f"DOWNSTREAM_{k.upper()}": v for k, v in settings.items()},
        }

    def user_token(self, downstream_base: str) -> str:
        """alice's token for downstream-api as the api gets it on-behalf-of her (emulator's signing key)."""
        api = apis_at("https://api.invalid", downstream_base)["downstream-api"]
        return Issuer(self.emulator).token(api, scp="Records.ReadWrite")

    def stop(self) -> None:
        self.cluster.stop()
        self.responder.stop()


def start_pg_stack(emulator: LiveEmulator, root: Path) -> PgStack:
    checker = TokenChecker(
        authority=emulator.authority(),
        roles=role_map(repo_root() / "infra" / "registrations.yaml"),
        ca_bundle=emulator.tls.ca_bundle,
    )
    responder = TokenResponder(checker, free_port()).start()
    try:
        cluster = Cluster(root, free_port(), responder.port, emulator.tls).start()
    except BaseException:
        responder.stop()
        raise
    stack = PgStack(emulator, responder, cluster)
    try:
        stack.migrate()
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="session")
def pg(live: LiveEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgStack]:
    stack = start_pg_stack(live, tmp_path_factory.mktemp("pg") / "postgres")
    yield stack
    stack.stop()


@pytest.fixture
def pg_factory(tmp_path: Path) -> Iterator[Callable[[LiveEmulator], PgStack]]:
    started: list[PgStack] = []

    def start(emulator: LiveEmulator) -> PgStack:
        started.append(start_pg_stack(emulator, tmp_path / f"postgres-{len(started)}"))
        return started[-1]

    yield start
    for stack in started:
        stack.stop()


def records_client(base: str, ca_bundle: Path, token: str) -> httpx.Client:
    import ssl

    return httpx.Client(
        base_url=base,
        verify=ssl.create_default_context(cafile=ca_bundle),
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
        trust_env=False,
    )
