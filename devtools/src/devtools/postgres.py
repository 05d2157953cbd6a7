"""A private PostgreSQL 15 cluster that only lets in Entra tokens, as Azure's Entra-only mode does.

The cluster lives under `.local/postgres/` (data, unix socket, log), listens on 127.0.0.1 only, serves
TLS with a certificate of the dev CA (devtools.tls) and refuses any TCP login without it (hostssl /
hostnossl reject, as Azure's `require_secure_transport`); its pg_hba.conf sends every TLS login to the LDAP
token responder (devtools.pgtoken) in simple-bind mode: the role name is the bind DN and the password must
be that role's managed identity's token, which so never crosses even loopback in clear.
No role has a password. The bootstrap superuser `postgres` is reachable only over the unix socket,
whose directory is owner-only (trust there means: whoever may open the socket file, i.e. us).

Roles (their names are the managed identities' names, as Azure's pgaadauth_create_principal_with_oid
makes them):

- `database-admin` owns the database and runs the schema migrations;
- `downstream-api` may only SELECT/INSERT/UPDATE/DELETE the tables (default privileges of the admin
  role, so a table added by a later migration is covered too), connect to `records` alone (CONNECT and
  TEMPORARY on `postgres` and `template1` are revoked from PUBLIC) and create no temporary tables; it owns
  nothing and is no superuser nor BYPASSRLS, so the tables' row-level security (migration 0004) holds it.

PostgreSQL refuses to run as root (and CI runs as root): then every PostgreSQL program runs in a user
namespace whose only user is `nobody`, mapped to us, so the files stay ours and the folders owner-only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from psycopg import sql

from devtools.files import write_private
from devtools.tls import DevTls, tls_paths

SUPERUSER = "postgres"
DATABASE = "records"
ADMIN_ROLE = "database-admin"
APP_ROLE = "downstream-api"
DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")
READY_FILE = "ready"
# Databases every cluster has, which no application role needs.
OTHER_DATABASES = ("postgres", "template1")


class PostgresMissing(RuntimeError):
    pass


def postgres_bin() -> Path:
    """Where PostgreSQL 15's programs are (ZT_POSTGRES_BIN overrides); a clear error if absent."""
    path = Path(os.environ.get("ZT_POSTGRES_BIN") or DEFAULT_BIN)
    if not (path / "postgres").is_file() or not (path / "initdb").is_file():
        raise PostgresMissing(
            f"PostgreSQL 15 is not installed ({path}/postgres not found): `sudo apt-get install -y postgresql-15` "
            "(`make run DB=postgres` and `make test` install it as root on Debian), or set ZT_POSTGRES_BIN"
        )
    return path


def _unprivileged(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    unshare = shutil.which("unshare")
    if unshare is None:
        raise PostgresMissing("PostgreSQL refuses to run as root and `unshare` (util-linux) is missing")
    return [unshare, "--user", "--map-user=65534", "--map-group=65534", *argv]


def database_url(port: int, ca_cert: Path, role: str = APP_ROLE) -> str:
    """The SQLAlchemy URL of the local cluster for `role`: no password (the token is the credential), TLS with
    the server's certificate and name checked against the dev CA alone (sslmode=verify-full)."""
    tls = urlencode({"sslmode": "verify-full", "sslrootcert": str(ca_cert)})
    return f"postgresql+psycopg://{role}@127.0.0.1:{port}/{DATABASE}?{tls}"


class Cluster:
    """`tls` (certificate and key of the dev CA, and the CA): without it the cluster takes no TCP login at all."""

    def __init__(self, root: Path, port: int, ldap_port: int, tls: DevTls | None = None) -> None:
        self.root = root
        self.port = port
        self.ldap_port = ldap_port
        self.tls = tls
        self.bin = postgres_bin()
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log_path = root / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None

    # -- layout ---------------------------------------------------------------------------------

    def url(self, role: str = APP_ROLE) -> str:
        """SQLAlchemy URL for `role`, with no password: the token is supplied per connection."""
        if self.tls is None:
            raise RuntimeError("a cluster without TLS takes no login over TCP")
        return database_url(self.port, self.tls.ca_cert, role)

    def init(self) -> None:
        """initdb once; (re)write pg_hba.conf every time, since the responder's port may change."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_dir.mkdir(exist_ok=True, mode=0o700)
        if not (self.data / "PG_VERSION").exists():
            if self.data.exists():
                shutil.rmtree(self.data)
            subprocess.run(  # noqa: S603 - fixed argv
                _unprivileged(
                    [
                        str(self.bin / "initdb"),
                        "-D",
                        str(self.data),
                        "-U",
                        SUPERUSER,
                        "-E",
                        "UTF8",
                        "--locale=C",
                        "--auth-local=trust",
                        "--auth-host=reject",
                        "--no-instructions",
                    ]
                ),
                check=True,
                capture_output=True,
            )
        (self.data / "pg_hba.conf").write_text(self.hba())
        if self.tls is not None:
            # The server's own copies, owner-only as PostgreSQL demands of a key, renewed with the dev CA's.
            write_private(self.root / "server.crt", self.tls.server_cert.read_bytes())
            write_private(self.root / "server.key", self.tls.server_key.read_bytes())

    def hba(self) -> str:
        # Simple-bind mode (ldapprefix/ldapsuffix set, even empty): PostgreSQL binds as
        # "<prefix><role><suffix>" with the client's password and lets it in on success. The empty
        # strings make the DN exactly the role name. Over TLS only: a login without it is refused before
        # a password is asked for. Nothing else can log in over TCP.
        ldap = f'ldap ldapserver=127.0.0.1 ldapport={self.ldap_port} ldapprefix="" ldapsuffix=""'
        tcp = f"hostssl all all 127.0.0.1/32 {ldap}\n" if self.tls is not None else ""
        header = "# Written by devtools.postgres; rewritten at every start.\n"
        return f"{header}local all {SUPERUSER} trust\n{tcp}host all all 0.0.0.0/0 reject\n"

    def server_argv(self) -> list[str]:
        options: dict[str, object] = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": self.socket_dir,
            "unix_socket_permissions": "0700",
            "log_connections": "on",
            "fsync": "off",
        }
        if self.tls is not None:
            tls = {"ssl_cert_file": self.root / "server.crt", "ssl_key_file": self.root / "server.key"}
            options.update(ssl="on", ssl_min_protocol_version="TLSv1.2", **tls)
        settings = [arg for name, value in options.items() for arg in ("-c", f"{name}={value}")]
        return _unprivileged([str(self.bin / "postgres"), "-D", str(self.data), *settings])

    # -- lifecycle (tests and `python -m devtools.postgres`) ------------------------------------

    def start(self, timeout: float = 30) -> Cluster:
        self.init()
        (self.root / READY_FILE).unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv
                self.server_argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.wait_ready(timeout)
        self.bootstrap()
        (self.root / READY_FILE).write_text(str(self.port))
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with self.superuser():
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres not ready after {timeout:.0f} s:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back sessions, checkpoint, exit), then kill if it hangs."""
        (self.root / READY_FILE).unlink(missing_ok=True)
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def superuser(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=dbname, autocommit=True, connect_timeout=5
        )

    def bootstrap(self) -> None:
        """Roles without passwords, the database owned by the admin role, least privilege for the app.

        Idempotent: run at every start.
        """
        with self.superuser() as conn:
            for role in (ADMIN_ROLE, APP_ROLE):
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                # No role has a password: the token is the only credential (Entra-only authentication).
                conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD NULL").format(sql.Identifier(role)))
            # Explicit, as Azure's pgaadauth_create_principal makes them: nothing to bypass row-level security with.
            conn.execute(
                sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS").format(
                    sql.Identifier(APP_ROLE)
                )
            )
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(ADMIN_ROLE))
                )
            # Every role may connect to these and make temporary tables there by default: not ours.
            for other in OTHER_DATABASES:
                conn.execute(
                    sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(other))
                )
        admin, app = sql.Identifier(ADMIN_ROLE), sql.Identifier(APP_ROLE)
        with self.superuser(DATABASE) as conn:
            for statement in (
                "REVOKE ALL ON DATABASE {db} FROM PUBLIC",
                # Connect, and nothing else: no temporary tables either.
                "REVOKE ALL ON DATABASE {db} FROM {app}",
                "GRANT CONNECT ON DATABASE {db} TO {app}",
                "ALTER SCHEMA public OWNER TO {admin}",
                "REVOKE ALL ON SCHEMA public FROM PUBLIC",
                "GRANT USAGE ON SCHEMA public TO {app}",
                # Tables a later migration creates (as the admin role) are covered without a new grant.
                "ALTER DEFAULT PRIVILEGES FOR ROLE {admin} IN SCHEMA public "
                "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
                "ALTER DEFAULT PRIVILEGES FOR ROLE {admin} IN SCHEMA public GRANT USAGE ON SEQUENCES TO {app}",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
            ):
                conn.execute(sql.SQL(statement).format(db=sql.Identifier(DATABASE), admin=admin, app=app))


def main(argv: Sequence[str] | None = None) -> int:
    """Foreground cluster for `zt run`: starts, bootstraps, writes `<root>/ready`, stops on SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m devtools.postgres", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ldap-port", type=int, required=True)
    parser.add_argument("--tls-dir", type=Path, required=True, help="the dev CA's folder (devtools.tls)")
    args = parser.parse_args(argv)
    stop = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        cluster = Cluster(args.root, args.port, args.ldap_port, tls_paths(args.tls_dir))
        cluster.start()
    except (PostgresMissing, RuntimeError, subprocess.CalledProcessError, psycopg.Error) as exc:
        detail = exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else ""
        print(f"devtools.postgres: {exc}\n{detail}", file=sys.stderr)
        return 1
    print(f"devtools.postgres: PostgreSQL on 127.0.0.1:{args.port}, logging to {cluster.log_path}", flush=True)
    try:
        while not stop:
            if cluster.process is None or cluster.process.poll() is not None:
                print(f"devtools.postgres: postgres exited:\n{cluster.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.2)
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
