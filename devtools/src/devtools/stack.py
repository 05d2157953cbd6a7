"""The local stack runner behind `zt run`.

It starts each service as a child in its own process group, waits for every `/healthz`, writes
`.local/stack.json` for other tools, and on a signal or a child's death takes the whole stack down:
no child may outlive the runner.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO
from urllib.parse import urlsplit

import httpx

from devtools.files import write_private
from devtools.tls import DevTls, ca_env

Describe = Callable[[], Mapping[str, object]]

TAIL_LINES = 40
POLL_INTERVAL = 0.2
HEALTH_REQUEST_TIMEOUT = 1.0
EXIT_PORT_IN_USE = 2
EXIT_FAILED = 1


@dataclass(frozen=True)
class Service:
    name: str
    argv: tuple[str, ...]
    # A mapping, or a callable evaluated just before the service starts.
    env: Mapping[str, str] | Callable[[], Mapping[str, str]]
    health_url: str
    # Key under which stack.json publishes this service's base URL (None: someone else describes it).
    stack_key: str | None = None
    # Ports it listens on besides the health URL's, so a clash is refused up front, not found mid-start.
    extra_ports: tuple[int, ...] = ()
    # For what has no /healthz (PostgreSQL, the LDAP responder; health_url is then tcp://host:port):
    # True once it is ready.
    ready: Callable[[], bool] | None = None
    # Run just before the service starts, once what it depends on is up (the schema migration);
    # an exception stops the stack with its message.
    prepare: Callable[[], None] | None = None

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.health_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def port(self) -> int:
        parts = urlsplit(self.health_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.extra_ports)


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
    emulator_env = {
        **base,
        "EMULATOR_PORT": str(ports.emulator),
        "EMULATOR_FRONT_PORT": str(ports.emulator_front),
        "EMULATOR_STATE_DIR": str(local / "emulator"),
        "EMULATOR_TLS_CERT": str(tls.server_cert),
        "EMULATOR_TLS_KEY": str(tls.server_key),
        "EMULATOR_MANIFEST": str(root / "infra" / "registrations.yaml"),
        "EMULATOR_DIRECTORY": str(root / "identity-emulator" / "demo" / "directory.yaml"),
    }
    multi = len(tenants) > 1
    if multi:
        emulator_env["EMULATOR_MULTI_TENANT_APPS"] = ",".join(MULTI_TENANT_APPS)
    emulator = f"https://localhost:{ports.emulator}"
    api, downstream = f"https://localhost:{ports.api}", f"https://localhost:{ports.downstream}"
    web = f"http://localhost:{ports.web}"

    def tier_env(identity: str, prefix: str, state: str, **settings: str) -> Callable[[], Mapping[str, str]]:
        def env() -> Mapping[str, str]:
            # Read once the emulator is up: it creates the identity headers at first start.
            headers = json.loads((local / "emulator" / "managed-identity-headers.json").read_text())
            authority = _home_authority(emulator)
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
                **{f"{prefix}_{k.upper()}": v for k, v in settings.items()},
            }

        return env

    database: list[Service] = []
    downstream_settings = {
        "port": str(ports.downstream),
        # Graph for group overage: the emulator stands in for https://graph.microsoft.com.
        "graph_url": emulator,
        # zt: overprivileged-permissions - read by `zt permissions-report`.
        "audit_log": str(local / "audit" / "downstream-api.jsonl"),
        **({"allowed_tenants": ",".join(tenants)} if multi else {}),
    }
    prepare = None
    if db == "postgres":
        database = postgres_services(tls, local, root, ports, _home_authority(emulator))
        downstream_settings.update(database_url=database_url(ports), migrate_on_start="false")

        def prepare() -> None:
            # The schema is the admin identity's business, done before the service starts.
            admin = {**tier_env("database-admin", "DOWNSTREAM", "downstream")(), **_admin_database_env(ports)}
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
                audit_log=str(local / "audit" / "api.jsonl"),
            ),
            f"{api}/healthz",
            "api",
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


def database_url(ports: Ports, role: str = "downstream-api") -> str:
    """The SQLAlchemy URL of the local cluster for `role`: no password, the token is the credential."""
    return f"postgresql+psycopg://{role}@127.0.0.1:{ports.postgres}/records"


def _admin_database_env(ports: Ports) -> dict[str, str]:
    return {"DOWNSTREAM_DATABASE_URL": database_url(ports, "database-admin")}


def postgres_services(tls: DevTls, local: Path, root: Path, ports: Ports, authority: str) -> list[Service]:
    """The LDAP token responder, then the cluster that asks it (devtools.pgtoken, devtools.postgres)."""
    from devtools.postgres import READY_FILE, postgres_bin

    postgres_bin()  # a clear message now if PostgreSQL is not installed, not a dead child later
    base = {**os.environ, **ca_env(tls), "PYTHONUNBUFFERED": "1"}
    root_dir = local / "postgres"
    return [
        Service(
            "pgtoken",
            (
                *_module("devtools.pgtoken"),
                "--port",
                str(ports.pgtoken),
                "--authority",
                authority,
                "--manifest",
                str(root / "infra" / "registrations.yaml"),
                "--ca-bundle",
                str(tls.ca_bundle),
            ),
            base,
            f"tcp://127.0.0.1:{ports.pgtoken}",
            ready=lambda: _accepts(ports.pgtoken),
        ),
        Service(
            "postgres",
            (
                *_module("devtools.postgres"),
                "--root",
                str(root_dir),
                "--port",
                str(ports.postgres),
                "--ldap-port",
                str(ports.pgtoken),
            ),
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


def _home_authority(emulator: str) -> str:
    from identity_emulator.stack import home_tenant_id

    return f"{emulator}/{home_tenant_id()}"


def emulator_describe(state_dir: Path, ports: Ports = Ports()) -> Describe:
    def describe() -> Mapping[str, object]:
        # Imported late: the emulator package is optional for everything else devtools does.
        from identity_emulator.settings import EmulatorSettings
        from identity_emulator.stack import stack_info

        settings = EmulatorSettings(state_dir=state_dir, port=ports.emulator, front_port=ports.emulator_front)
        return dict(stack_info(state_dir, settings))

    return describe


def run_stack(
    services: Sequence[Service],
    *,
    stack_file: Path,
    describe: Describe,
    ca_bundle: Path,
    ready_timeout: float = 30.0,
    stop_timeout: float = 5.0,
    out: TextIO | None = None,
) -> int:
    """Run `services` until SIGINT/SIGTERM/SIGHUP (exit 0) or until one fails (non-zero)."""
    runner = _Runner(services, stack_file, describe, ca_bundle, stop_timeout, out or sys.stdout)
    return runner.run(ready_timeout)


class _StackFailed(Exception):
    pass


@dataclass
class _Child:
    service: Service
    proc: subprocess.Popen[bytes]
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    reader: threading.Thread | None = None


class _Runner:
    def __init__(
        self,
        services: Sequence[Service],
        stack_file: Path,
        describe: Describe,
        ca_bundle: Path,
        stop_timeout: float,
        out: TextIO,
    ) -> None:
        self.services = list(services)
        self.stack_file = stack_file
        self.describe = describe
        self.ca_bundle = ca_bundle
        self.stop_timeout = stop_timeout
        self.out = out
        self.out_lock = threading.Lock()
        self.children: list[_Child] = []
        # Set by the signal handler. A plain int, not a threading.Event: Event.set() from a handler
        # can deadlock on the Event's own lock if the signal lands while the main thread holds it.
        self.stop_signal = 0

    def log(self, message: str) -> None:
        with self.out_lock:
            self.out.write(message + "\n")
            self.out.flush()

    def run(self, ready_timeout: float) -> int:
        busy = [(s, port) for s in self.services for port in s.ports if _port_busy(port)]
        if busy:
            for s, port in busy:
                self.log(f"zt: port {port} on 127.0.0.1 is already in use; {s.name} needs it.")
            self.log("zt: is another `zt run` still running? Stop it (or whatever holds the port) first.")
            return EXIT_PORT_IN_USE
        # A stack.json left by a runner that was killed outright would point tools at a dead stack.
        self.stack_file.unlink(missing_ok=True)

        previous = self._install_signal_handlers()
        try:
            # In dependency order, each healthy before the next starts: a tier's environment may
            # depend on what an earlier one created (the emulator's managed-identity headers).
            deadline = time.monotonic() + ready_timeout
            for service in self.services:
                self._start(service)
                if not self._wait_healthy(deadline):
                    self._log_stop_request()
                    return 0
            self._publish()
            while not self._pause():
                for child in self.children:
                    if child.proc.poll() is not None:
                        self._settle_output(child)
                        raise _StackFailed(
                            f"{child.service.name} {_describe_exit(child.proc)} while the stack was running;"
                            " stopping the rest" + self._tail_text(child)
                        )
            self._log_stop_request()
            return 0
        except _StackFailed as failure:
            self.log(f"zt: {failure}")
            return EXIT_FAILED
        finally:
            # Withdraw stack.json first so no tool picks up a stack that is going away.
            self.stack_file.unlink(missing_ok=True)
            self._stop_children()
            for signum, handler in previous.items():
                # None means a handler installed outside Python, which cannot be put back from here.
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _install_signal_handlers(self) -> dict[int, Callable[[int, FrameType | None], object] | int | None]:
        def request_stop(signum: int, _frame: FrameType | None) -> None:
            # Only flag it: raising (or even logging, which takes a lock) here could interrupt Popen or
            # cleanup half-way and orphan a child.
            self.stop_signal = self.stop_signal or signum

        previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, request_stop)
        return previous

    def _pause(self) -> bool:
        """Sleep one poll interval; True if a stop was requested."""
        if not self.stop_signal:
            time.sleep(POLL_INTERVAL)
        return bool(self.stop_signal)

    def _log_stop_request(self) -> None:
        if self.stop_signal:
            self.log(f"zt: received {signal.Signals(self.stop_signal).name}")

    def _start(self, service: Service) -> None:
        if service.prepare is not None:
            try:
                service.prepare()
            except Exception as exc:
                raise _StackFailed(f"could not prepare {service.name}: {exc}") from exc
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv comes from our own service list, never a shell
                list(service.argv),
                env=dict(service.env() if callable(service.env) else service.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Its own session keeps terminal Ctrl-C away from the child (we stop it in order) and
                # gives us a process group to signal, which reaches any grandchildren it spawns too.
                start_new_session=True,
            )
        except OSError as exc:
            raise _StackFailed(f"could not start {service.name} ({' '.join(service.argv)}): {exc}") from exc
        child = _Child(service, proc)
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.reader.start()
        self.children.append(child)
        self.log(f"zt: started {service.name} (pid {proc.pid})")

    def _pump(self, child: _Child) -> None:
        assert child.proc.stdout is not None
        for raw in iter(child.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            child.tail.append(line)
            self.log(f"[{child.service.name}] {line}")

    def _wait_healthy(self, deadline: float) -> bool:
        """True once every child answers 200 on its health URL; False if a stop was requested first."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        pending = list(self.children)
        # trust_env=False: a developer's HTTP(S)_PROXY must not swallow requests meant for localhost.
        with httpx.Client(verify=context, timeout=HEALTH_REQUEST_TIMEOUT, trust_env=False) as client:
            while pending:
                for child in list(pending):
                    if child.proc.poll() is not None:
                        self._settle_output(child)
                        raise _StackFailed(
                            f"{child.service.name} {_describe_exit(child.proc)} before it became healthy"
                            + self._tail_text(child)
                        )
                    ready = child.service.ready
                    if ready() if ready is not None else _healthy(client, child.service.health_url):
                        pending.remove(child)
                        self.log(f"zt: {child.service.name} is healthy at {child.service.health_url}")
                if not pending:
                    break
                if time.monotonic() > deadline:
                    names = ", ".join(c.service.name for c in pending)
                    raise _StackFailed(
                        f"timed out waiting for {names} to answer 200 on /healthz"
                        + "".join(self._tail_text(c) for c in pending)
                    )
                if self._pause():
                    return False
        return not self.stop_signal

    def _publish(self) -> None:
        try:
            described = dict(self.describe())
        except Exception as exc:
            raise _StackFailed(f"could not describe the running stack: {exc!r}") from exc
        info: dict[str, object] = {**described}
        info.update({s.stack_key: s.base_url for s in self.services if s.stack_key})
        info["ca_bundle"] = str(self.ca_bundle)
        info["runner_pid"] = os.getpid()
        self.stack_file.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.stack_file, (json.dumps(info, indent=2, sort_keys=True, default=str) + "\n").encode())
        self._print_summary(info)

    def _print_summary(self, info: Mapping[str, object]) -> None:
        lines = ["", "zt: the stack is ready."]
        for service in self.services:
            if service.stack_key:
                lines.append(f"  {service.stack_key:<18} {service.base_url}")
        for key in ("emulator", "emulator_front_channel", "authority"):
            if key in info:
                lines.append(f"  {key:<18} {info[key]}")
        users = info.get("demo_users")
        if isinstance(users, list):
            lines.append(f"  {'demo users':<18} {', '.join(str(u) for u in users)}")
        if "demo_password" in info:
            # Where it is, not what it is: terminal output ends up in CI logs, screen shares and
            # pasted bug reports, and the secret scan of captured logs (tests/security) finds it.
            where = self.stack_file.parent / "emulator" / "demo-password"
            lines.append(f"  {'demo password':<18} in {where} (and stack.json)")
        lines.append(f"  {'CA bundle':<18} {self.ca_bundle}")
        lines.append(f"  {'details':<18} {self.stack_file}")
        lines.append(f"zt: press Ctrl-C to stop (or: kill -TERM {os.getpid()}).")
        self.log("\n".join(lines))

    def _settle_output(self, child: _Child) -> None:
        # The process has exited, but its last lines may still be in the pipe; let the reader drain it.
        if child.reader is not None:
            child.reader.join(timeout=2.0)

    def _tail_text(self, child: _Child) -> str:
        if not child.tail:
            return f"\n  ({child.service.name} printed nothing)"
        header = f"\n  last output of {child.service.name}:"
        return header + "".join(f"\n  | {line}" for line in child.tail)

    def _stop_children(self) -> None:
        if not self.children:
            return
        self.log("zt: stopping the stack...")
        for child in self.children:
            _signal_group(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in self.children:
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"zt: {child.service.name} did not stop within {self.stop_timeout:g} s; killing it")
        for child in self.children:
            # Also after a clean exit: it reaps grandchildren that ignored SIGTERM or outlived the leader.
            _signal_group(child.proc.pid, signal.SIGKILL)
        for child in self.children:
            child.proc.wait()
            self._settle_output(child)
        self.log("zt: stopped.")


def _module(name: str) -> tuple[str, ...]:
    # sys.executable is the workspace venv's Python under `uv run`, so every member package imports.
    return (sys.executable, "-m", name)


def _healthy(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _port_busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR ignores TIME_WAIT leftovers of a previous run but still fails on a live listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    # The group may already be gone (some systems answer EPERM for a group left with only zombies).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _describe_exit(proc: subprocess.Popen[bytes]) -> str:
    code = proc.returncode
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
