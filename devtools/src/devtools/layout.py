"""This app's local stack for the supervisor: which services, in which order, on which ports, with
which environment (each tier its own managed identity), and what stack.json tells other tools."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.supervisor import HEALTH_REQUEST_TIMEOUT, Describe, Service, Summary
from devtools.tls import DevTls, ca_env


@dataclass(frozen=True)
class Ports:
    """Where each tier listens; shifted as a block to run a second stack (tests) beside yours."""

    web: int = 8000
    api: int = 8001
    downstream: int = 8002
    emulator: int = 8443
    emulator_front: int = 8444
    # With --db postgres: the private cluster and the LDAP token responder it asks.
    postgres: int = 8432
    pgtoken: int = 8389

    def shifted(self, offset: int) -> Ports:
        return Ports(**{f.name: getattr(self, f.name) + offset for f in dataclasses.fields(self)})


# zt: identity-supported-account-types - the registrations a multi-tenant run opens to other tenants.
MULTI_TENANT_APPS = ("web", "api", "downstream-api")


def tenant_ids(names: Sequence[str]) -> list[str]:
    """Demo tenant names (or ids) to tenant ids, home tenant first; [] means the home tenant only."""
    if not names:
        return []
    from identity_emulator.manifest import load_directory
    from identity_emulator.settings import EmulatorSettings

    settings = EmulatorSettings()
    directory = load_directory(settings.manifest, settings.directory)
    found = []
    for name in names:
        tenant = directory.tenant(name.strip())
        if tenant is None:
            known = ", ".join(sorted(t.name for t in directory.tenants.values()))
            raise ValueError(f"--tenants: no demo tenant {name.strip()!r} (known: {known})")
        found.append(tenant.tenant_id)
    home = directory.home_tenant_id
    return [home, *dict.fromkeys(t for t in found if t != home)]


def default_services(
    tls: DevTls,
    local: Path,
    root: Path,
    ports: Ports = Ports(),
    *,
    tenants: Sequence[str] = (),
    db: str = "sqlite",
) -> list[Service]:
    """`tenants`: allowed tenant ids, home first (tenant_ids()); empty or one: single-tenant.
    `db`: sqlite, or postgres (a private cluster that admits only managed-identity tokens)."""
    # Children inherit the developer's environment so PATH, proxies and locale behave as in a shell;
    # unbuffered output makes their logs appear as they happen rather than at exit.
    base = {**os.environ, **ca_env(tls), "PYTHONUNBUFFERED": "1"}
    emulator_env = {**base, **emulator_settings(tls, local / "emulator", root, ports.emulator, ports.emulator_front)}
    # zt: secure-with-cae
    # The api's SCIM endpoint (told when an administrator disables a user); the web's origin (terms URLs).
    web = f"http://localhost:{ports.web}"
    emulator_env |= {"EMULATOR_SCIM_URL": f"https://localhost:{ports.api}/scim/v2", "EMULATOR_WEB_ORIGIN": web}
    multi = len(tenants) > 1
    if multi:
        emulator_env["EMULATOR_MULTI_TENANT_APPS"] = ",".join(MULTI_TENANT_APPS)
    emulator = f"https://localhost:{ports.emulator}"
    api, downstream = f"https://localhost:{ports.api}", f"https://localhost:{ports.downstream}"

    def tier_env(identity: str, prefix: str, state: str, **settings: str) -> Callable[[], Mapping[str, str]]:
        def env() -> Mapping[str, str]:
            # Read once the emulator is up: it creates the identity headers at first start.
            headers = json.loads((local / "emulator" / "managed-identity-headers.json").read_text())
            authority = home_authority(emulator)
            if multi and prefix == "WEB":
                authority = f"{emulator}/organizations"
            return {
                **base,
                # What Azure App Service / Container Apps set for the workload's managed identity.
                "IDENTITY_ENDPOINT": f"{emulator}/msi/token",
                "IDENTITY_HEADER": headers[identity],
                f"{prefix}_AUTHORITY": authority,
                f"{prefix}_TLS_CERT": str(tls.server_cert),
                f"{prefix}_TLS_KEY": str(tls.server_key),
                f"{prefix}_STATE_DIR": str(local / state),
                # zt: secure-with-cae
                f"{prefix}_GRAPH_URL": emulator,  # standing in for https://graph.microsoft.com
                # zt: identity-iam-development-best-practices - decisions and spans, joined by trace id.
                f"{prefix}_AUDIT_LOG": str(local / "audit" / f"{identity}.jsonl"),
                f"{prefix}_TRACE_FILE": str(local / "traces" / f"{identity}.jsonl"),
                **{f"{prefix}_{k.upper()}": v for k, v in settings.items()},
            }

        return env

    database: list[Service] = []
    downstream_settings = {
        "port": str(ports.downstream),
        **({"allowed_tenants": ",".join(tenants)} if multi else {}),
    }
    prepare = None
    if db == "postgres":
        database = postgres_services(tls, local, root, ports, home_authority(emulator))
        downstream_settings.update(database_url=database_url(ports, tls), migrate_on_start="false")
        admin_url = database_url(ports, tls, "database-admin")

        def prepare() -> None:
            # The schema is the admin identity's business, done before the service starts.
            admin = tier_env("database-admin", "DOWNSTREAM", "downstream", database_url=admin_url)()
            run_migration(admin)

    return [
        Service(
            "identity-emulator",
            _module("identity_emulator"),
            emulator_env,
            f"{emulator}/healthz",
            extra_ports=(ports.emulator_front,),
        ),
        *database,
        Service(
            "downstream-api",
            _module("downstream_api"),
            tier_env("downstream-api", "DOWNSTREAM", "downstream", **downstream_settings),
            f"{downstream}/healthz",
            "downstream_api",
            prepare=prepare,
            # The tiers find each other by address, not at start-up: they start side by side.
            wait=False,
        ),
        Service(
            "api",
            _module("api"),
            tier_env(
                "api",
                "API",
                "api",
                port=str(ports.api),
                downstream_url=downstream,
                **({"allowed_tenants": ",".join(tenants)} if multi else {}),
            ),
            f"{api}/healthz",
            "api",
            wait=False,
        ),
        Service(
            "web",
            _module("web"),
            tier_env(
                "web",
                "WEB",
                "web",
                port=str(ports.web),
                api_url=api,
                redirect_uri=f"{web}/auth/callback",
                post_logout_redirect_uri=f"{web}/",
                idp_origin=f"http://localhost:{ports.emulator_front}",
                admin_consent_url=f"http://localhost:{ports.emulator_front}/admin",
                # Against the local emulator only: the web app's Settings refuse it in production.
                attack_lab="true",
                # Multi-tenant: sign in at /organizations, then the allowlist decides (tid and issuer).
                **({"allowed_tenants": ",".join(tenants)} if multi else {}),
            ),
            f"{web}/healthz",
            "web",
        ),
    ]


def emulator_settings(tls: DevTls, state_dir: Path, root: Path, port: int, front_port: int) -> dict[str, str]:
    """The emulator's own environment, for `zt run` and for the tests' emulators alike."""
    return {
        **{"EMULATOR_PORT": str(port), "EMULATOR_FRONT_PORT": str(front_port), "EMULATOR_STATE_DIR": str(state_dir)},
        "EMULATOR_TLS_CERT": str(tls.server_cert),
        "EMULATOR_TLS_KEY": str(tls.server_key),
        "EMULATOR_MANIFEST": str(root / "infra" / "registrations.yaml"),
        "EMULATOR_DIRECTORY": str(root / "identity-emulator" / "demo" / "directory.yaml"),
        "EMULATOR_AUDIT_LOG": str(state_dir.parent / "audit" / "graph.jsonl"),
    }


def database_url(ports: Ports, tls: DevTls, role: str = "downstream-api") -> str:
    """The local cluster's URL for `role`: no password, TLS checked against the dev CA (devtools.postgres)."""
    from devtools.postgres import database_url as cluster_url

    return cluster_url(ports.postgres, tls.ca_cert, role)


def postgres_services(tls: DevTls, local: Path, root: Path, ports: Ports, authority: str) -> list[Service]:
    """The LDAP token responder, then the cluster that asks it (devtools.pgtoken, devtools.postgres)."""
    from devtools.postgres import READY_FILE, postgres_bin

    postgres_bin()  # a clear message now if PostgreSQL is not installed, not a dead child later
    base = {**os.environ, **ca_env(tls), "PYTHONUNBUFFERED": "1"}
    root_dir = local / "postgres"
    manifest = root / "infra" / "registrations.yaml"
    pgtoken = ("--port", str(ports.pgtoken), "--authority", authority, "--manifest", str(manifest))
    postgres = ["--root", str(root_dir), "--port", str(ports.postgres), "--ldap-port", str(ports.pgtoken)]
    postgres += ["--tls-dir", str(tls.ca_cert.parent)]  # the server's certificate, of the dev CA
    return [
        Service(
            "pgtoken",
            _module("devtools.pgtoken", *pgtoken, "--ca-bundle", str(tls.ca_bundle)),
            base,
            f"tcp://127.0.0.1:{ports.pgtoken}",
            ready=lambda: _accepts(ports.pgtoken),
        ),
        Service(
            "postgres",
            _module("devtools.postgres", *postgres),
            base,
            f"tcp://127.0.0.1:{ports.postgres}",
            ready=lambda: (root_dir / READY_FILE).exists() and _accepts(ports.postgres),
        ),
    ]


def run_migration(env: Mapping[str, str], timeout: float = 120) -> None:
    """`python -m downstream_api.migrate` with `env` (the admin identity); raises with its output."""
    try:
        done = subprocess.run(  # noqa: S603 - argv is ours
            list(_module("downstream_api.migrate")),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"the schema migration did not finish within {timeout:g} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace").strip()[-3000:]
        raise RuntimeError(f"the schema migration failed (exit {done.returncode}):\n{output}")


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(HEALTH_REQUEST_TIMEOUT)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def home_authority(emulator: str) -> str:
    from identity_emulator.stack import home_tenant_id

    return f"{emulator}/{home_tenant_id()}"


def emulator_describe(state_dir: Path, ports: Ports = Ports(), database: str | None = None) -> Describe:
    """The emulator's part of stack.json; `database`: downstream-api's database URL, with --db postgres."""

    def describe() -> Mapping[str, object]:
        # Imported late: the emulator's settings and directory are only for `zt run`, and not free to load.
        from identity_emulator.settings import EmulatorSettings
        from identity_emulator.stack import stack_info

        settings = EmulatorSettings(state_dir=state_dir, port=ports.emulator, front_port=ports.emulator_front)
        info = dict(stack_info(state_dir, settings))
        # downstream-api's role and no password: the token is the credential (docs/postgres.md).
        return {**info, "database": database} if database else info

    return describe


def emulator_summary(state_dir: Path) -> Summary:
    """What the summary shows of the emulator's part of stack.json."""

    def summary(info: Mapping[str, object]) -> Iterable[str]:
        for key in ("emulator", "emulator_front_channel", "authority", "demo_administrator"):
            if key in info:
                yield f"  {key:<18} {info[key]}"
        users = info.get("demo_users")
        if isinstance(users, list):
            yield f"  {'demo users':<18} {', '.join(str(u) for u in users)}"
        if "demo_password" in info:
            # Where it is, not what it is: terminal output ends up in CI logs, screen shares and
            # pasted bug reports, and the secret scan of captured logs (tests/security) finds it.
            yield f"  {'demo password':<18} in {state_dir / 'demo-password'}: cat {state_dir / 'demo-password'}"

    return summary


def _module(name: str, *args: str) -> tuple[str, ...]:
    # sys.executable is the workspace venv's Python under `uv run`, so every member package imports.
    return (sys.executable, "-m", name, *args)
