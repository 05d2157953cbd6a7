from __future__ import annotations

import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from devtools.layout import Ports, default_services, tenant_ids
from devtools.paths import repo_root
from devtools.ports import free_port
from devtools.supervisor import RESTARTS_ALLOWED, Service, run_stack
from devtools.tls import DevTls, ensure_dev_tls

from tests.support.launch import alive

HERE = Path(__file__).parent
FAKE_SERVICE = HERE / "fake_service.py"
HARNESS = HERE / "stack_harness.py"

# The runner is tested with real child processes (fake services).
pytestmark = pytest.mark.live


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def tls(tmp_path: Path) -> DevTls:
    return ensure_dev_tls(tmp_path / "local")


def _fake(port: int, *extra: str | Path) -> tuple[str, ...]:
    return (sys.executable, "-u", str(FAKE_SERVICE), "--port", str(port), *(str(e) for e in extra))


class Harness:
    """A `zt run`-style runner process over fake services, plus what it takes to clean up after it."""

    def __init__(self, tmp_path: Path, tls: DevTls) -> None:
        self.tmp_path = tmp_path
        self.tls = tls
        self.stack_file = tmp_path / "local" / "stack.json"
        self.log = tmp_path / "runner.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid_files: list[Path] = []

    def start(self, services: list[dict[str, object]], **options: object) -> None:
        config = self.tmp_path / "stack-config.json"
        config.write_text(
            json.dumps(
                {
                    "services": services,
                    "stack_file": str(self.stack_file),
                    "ca_bundle": str(self.tls.ca_bundle),
                    **options,
                }
            )
        )
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", str(HARNESS), str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def pid_file(self, name: str) -> Path:
        path = self.tmp_path / f"{name}.pid"
        self.pid_files.append(path)
        return path

    def pids(self) -> list[int]:
        return [int(p.read_text()) for p in self.pid_files if p.exists()]

    def wait_ready(self) -> dict[str, object]:
        assert self.proc is not None
        proc = self.proc

        def ready_or_dead() -> bool:
            return self.stack_file.exists() or proc.poll() is not None

        _wait_for(ready_or_dead, "the runner to write stack.json")
        assert proc.poll() is None, self.output()
        info: dict[str, object] = json.loads(self.stack_file.read_text())
        return info

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def cleanup(self) -> None:
        # Only matters when a test failed half-way: never leave fake services running.
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pid in self.pids():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def harness(tmp_path: Path, tls: DevTls) -> Iterator[Harness]:
    h = Harness(tmp_path, tls)
    yield h
    h.cleanup()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_runner_waits_for_health_publishes_and_stops_every_child(
    harness: Harness, tls: DevTls, stop_signal: signal.Signals
) -> None:
    web_port, api_port = free_port(), free_port()
    harness.start(
        [
            {
                "name": "web",
                "argv": _fake(
                    web_port,
                    "--pid-file",
                    harness.pid_file("web"),
                    "--grandchild-pid-file",
                    harness.pid_file("web-worker"),
                ),
                "health_url": f"http://localhost:{web_port}/healthz",
                "stack_key": "web",
            },
            {
                "name": "api",
                "argv": _fake(
                    api_port,
                    "--pid-file",
                    harness.pid_file("api"),
                    "--tls-cert",
                    tls.server_cert,
                    "--tls-key",
                    tls.server_key,
                ),
                "health_url": f"https://localhost:{api_port}/healthz",
                "stack_key": "api",
            },
        ]
    )

    info = harness.wait_ready()

    assert info["web"] == f"http://localhost:{web_port}"
    assert info["api"] == f"https://localhost:{api_port}"
    assert info["ca_bundle"] == str(tls.ca_bundle)
    assert info["demo_users"] == ["alice@contoso.test", "bob@contoso.test"]
    assert stat.S_IMODE(harness.stack_file.stat().st_mode) == 0o600
    pids = harness.pids()
    assert len(pids) == 3 and all(alive(pid) for pid in pids)
    assert "alice@contoso.test" in harness.output()

    assert harness.proc is not None
    harness.proc.send_signal(stop_signal)
    assert harness.proc.wait(timeout=20) == 0, harness.output()

    assert not harness.stack_file.exists()
    _wait_for(lambda: not any(alive(pid) for pid in pids), "every child and grandchild to exit", 5)


def test_child_that_ignores_sigterm_is_killed(harness: Harness) -> None:
    port = free_port()
    harness.start(
        [
            {
                "name": "stubborn",
                "argv": _fake(port, "--pid-file", harness.pid_file("stubborn"), "--ignore-sigterm"),
                "health_url": f"http://127.0.0.1:{port}/healthz",
            }
        ],
        stop_timeout=0.5,
    )
    harness.wait_ready()
    (pid,) = harness.pids()

    assert harness.proc is not None
    harness.proc.send_signal(signal.SIGTERM)
    assert harness.proc.wait(timeout=20) == 0, harness.output()
    _wait_for(lambda: not alive(pid), "the stubborn child to be killed", 5)
    assert "did not stop within" in harness.output()


def test_child_dying_while_running_stops_the_rest_and_fails(harness: Harness) -> None:
    port_a, port_b = free_port(), free_port()
    harness.start(
        [
            {
                "name": "doomed",
                "argv": _fake(port_a, "--pid-file", harness.pid_file("doomed")),
                "health_url": f"http://localhost:{port_a}/healthz",
            },
            {
                "name": "survivor",
                "argv": _fake(port_b, "--pid-file", harness.pid_file("survivor")),
                "health_url": f"http://localhost:{port_b}/healthz",
            },
        ]
    )
    harness.wait_ready()
    doomed, survivor = harness.pids()

    os.kill(doomed, signal.SIGKILL)

    assert harness.proc is not None
    assert harness.proc.wait(timeout=20) == 1
    assert "doomed was killed by SIGKILL while the stack was running" in harness.output()
    assert not harness.stack_file.exists()
    _wait_for(lambda: not alive(survivor), "the surviving child to be stopped", 5)


def test_with_restart_a_dead_child_is_started_again_until_it_keeps_dying(harness: Harness) -> None:
    port = free_port()
    pid_file = harness.pid_file("flaky")
    harness.start(
        [
            {
                "name": "flaky",
                "argv": _fake(port, "--pid-file", pid_file),
                "health_url": f"http://localhost:{port}/healthz",
            }
        ],
        restart=True,
    )
    harness.wait_ready()
    for death in range(1, RESTARTS_ALLOWED + 1):
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda n=death: harness.output().count("flaky is healthy again") == n, f"restart {death}")
        assert harness.proc is not None and harness.proc.poll() is None and harness.stack_file.exists()
        assert int(pid_file.read_text()) != pid
    os.kill(int(pid_file.read_text()), signal.SIGKILL)  # once more within the window: broken, not unlucky
    assert harness.proc is not None and harness.proc.wait(timeout=20) == 1
    assert "flaky was killed by SIGKILL while the stack was running" in harness.output()


def _run_in_process(services: list[Service], tmp_path: Path, tls: DevTls, **kwargs: float) -> tuple[int, str]:
    out = io.StringIO()
    code = run_stack(
        services,
        stack_file=tmp_path / "stack.json",
        describe=lambda: {"demo_users": []},
        ca_bundle=tls.ca_bundle,
        out=out,
        **kwargs,
    )
    return code, out.getvalue()


def test_child_exiting_before_healthy_fails_with_its_output(tmp_path: Path, tls: DevTls) -> None:
    port = free_port()
    service = Service(
        "emulator", _fake(port, "--exit-early", "3"), dict(os.environ), f"http://localhost:{port}/healthz"
    )

    code, output = _run_in_process([service], tmp_path, tls)

    assert code == 1
    assert "emulator exited with code 3 before it became healthy" in output
    assert "| boom: pretend the manifest is missing" in output
    assert not (tmp_path / "stack.json").exists()


def test_never_healthy_times_out_and_stops_the_child(tmp_path: Path, tls: DevTls) -> None:
    port = free_port()
    pid_file = tmp_path / "sick.pid"
    service = Service(
        "sick",
        _fake(port, "--unhealthy", "--pid-file", pid_file),
        dict(os.environ),
        f"http://localhost:{port}/healthz",
    )

    code, output = _run_in_process([service], tmp_path, tls, ready_timeout=1.0)

    assert code == 1
    assert "timed out waiting for sick" in output
    assert "fake service listening" in output
    assert not alive(int(pid_file.read_text()))


@pytest.mark.parametrize("wait", [True, False])
def test_a_service_the_next_does_not_wait_for_starts_it_at_once(tmp_path: Path, tls: DevTls, wait: bool) -> None:
    # `slow` never becomes healthy: the next service starts beside it only when slow says wait=False.
    slow_port, next_port = free_port(), free_port()
    next_pid = tmp_path / "next.pid"
    slow = Service(
        "slow", _fake(slow_port, "--unhealthy"), dict(os.environ), f"http://localhost:{slow_port}/healthz", wait=wait
    )
    after = Service(
        "next", _fake(next_port, "--pid-file", next_pid), dict(os.environ), f"http://localhost:{next_port}/healthz"
    )

    code, output = _run_in_process([slow, after], tmp_path, tls, ready_timeout=2.0)

    assert code == 1 and "timed out waiting for slow" in output
    assert next_pid.exists() is (not wait)
    if next_pid.exists():
        assert "next is healthy" in output and not alive(int(next_pid.read_text()))


def test_refuses_to_start_when_a_port_is_taken(tmp_path: Path, tls: DevTls) -> None:
    pid_file = tmp_path / "never.pid"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        service = Service(
            "api", _fake(port, "--pid-file", pid_file), dict(os.environ), f"https://localhost:{port}/healthz"
        )
        code, output = _run_in_process([service], tmp_path, tls)

    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use; api needs it" in output
    assert not pid_file.exists()


def test_default_services_wire_the_emulator_to_the_dev_tls(tmp_path: Path, tls: DevTls) -> None:
    local, root = tmp_path / "local", tmp_path / "repo"

    emulator, downstream, api, web = default_services(tls, local, root)

    assert emulator.argv == (sys.executable, "-m", "identity_emulator")
    assert emulator.health_url == "https://localhost:8443/healthz"
    assert emulator.ports == (8443, 8444)
    assert isinstance(emulator.env, dict)
    assert emulator.env["EMULATOR_STATE_DIR"] == str(local / "emulator")
    assert emulator.env["EMULATOR_TLS_CERT"] == str(tls.server_cert)
    assert emulator.env["EMULATOR_TLS_KEY"] == str(tls.server_key)
    assert emulator.env["EMULATOR_MANIFEST"] == str(root / "infra" / "registrations.yaml")
    assert emulator.env["EMULATOR_DIRECTORY"] == str(root / "identity-emulator" / "demo" / "directory.yaml")
    # The Graph stand-in's audit lines go beside the tiers' (zt permissions-report reads them all).
    assert emulator.env["EMULATOR_AUDIT_LOG"] == str(local / "audit" / "graph.jsonl")
    assert emulator.env["SSL_CERT_FILE"] == emulator.env["REQUESTS_CA_BUNDLE"] == str(tls.ca_bundle)
    # Started in dependency order: each tier only after the one it calls.
    assert [s.name for s in (downstream, api, web)] == ["downstream-api", "api", "web"]
    assert [s.port for s in (downstream, api, web)] == [8002, 8001, 8000]


def test_each_tier_gets_its_own_managed_identity_and_shifted_ports(tmp_path: Path, tls: DevTls) -> None:
    local = tmp_path / "local"
    (local / "emulator").mkdir(parents=True)
    headers = {"web": "h-web", "api": "h-api", "downstream-api": "h-down", "daemon": "h-daemon"}
    (local / "emulator" / "managed-identity-headers.json").write_text(json.dumps(headers))

    _, downstream, api, web = default_services(tls, local, repo_root(), Ports().shifted(10000))

    envs = {s.name: dict(s.env() if callable(s.env) else s.env) for s in (downstream, api, web)}
    assert {n: e["IDENTITY_HEADER"] for n, e in envs.items()} == {
        "downstream-api": "h-down",
        "api": "h-api",
        "web": "h-web",
    }
    assert all(e["IDENTITY_ENDPOINT"] == "https://localhost:18443/msi/token" for e in envs.values())
    assert envs["api"]["API_DOWNSTREAM_URL"] == "https://localhost:18002"
    assert envs["web"]["WEB_API_URL"] == "https://localhost:18001"
    assert envs["web"]["WEB_REDIRECT_URI"] == "http://localhost:18000/auth/callback"
    assert envs["api"]["API_AUTHORITY"].startswith("https://localhost:18443/")


@pytest.mark.guidance("identity-supported-account-types")
def test_tenants_switch_every_tier_and_the_registrations_to_multi_tenant(tmp_path: Path, tls: DevTls) -> None:
    local = tmp_path / "local"
    (local / "emulator").mkdir(parents=True)
    headers = {"web": "h-web", "api": "h-api", "downstream-api": "h-down", "daemon": "h-daemon"}
    (local / "emulator" / "managed-identity-headers.json").write_text(json.dumps(headers))
    contoso, fabrikam = tenant_ids(["fabrikam", "contoso"])  # the home tenant comes first

    emulator, downstream, api, web = default_services(tls, local, repo_root(), tenants=[contoso, fabrikam])

    envs = {s.name: dict(s.env() if callable(s.env) else s.env) for s in (emulator, downstream, api, web)}
    assert envs["identity-emulator"]["EMULATOR_MULTI_TENANT_APPS"] == "web,api,downstream-api"
    # The registrations' terms and privacy URLs ("{web_origin}/terms") point at this run's web app.
    assert envs["identity-emulator"]["EMULATOR_WEB_ORIGIN"] == "http://localhost:8000"
    # One name and one syntax for every tier's allowlist.
    for service, prefix in (("api", "API"), ("downstream-api", "DOWNSTREAM"), ("web", "WEB")):
        assert envs[service][f"{prefix}_ALLOWED_TENANTS"] == f"{contoso},{fabrikam}"
    assert envs["web"]["WEB_AUTHORITY"] == "https://localhost:8443/organizations"
    # Every tier validating for itself still has its own (home) authority.
    assert envs["api"]["API_AUTHORITY"] == f"https://localhost:8443/{contoso}"
    assert envs["downstream-api"]["DOWNSTREAM_GRAPH_URL"] == "https://localhost:8443"


def test_single_tenant_by_default_and_unknown_tenants_refused(tmp_path: Path, tls: DevTls) -> None:
    assert tenant_ids([]) == []
    with pytest.raises(ValueError, match="no demo tenant 'northwind'"):
        tenant_ids(["contoso", "northwind"])
    emulator, *_ = default_services(tls, tmp_path / "local", repo_root())
    assert isinstance(emulator.env, dict) and "EMULATOR_MULTI_TENANT_APPS" not in emulator.env


def test_a_failing_preparation_stops_the_stack_before_the_service_starts(tmp_path: Path, tls: DevTls) -> None:
    port = free_port()
    pid_file = tmp_path / "never.pid"

    def migrate() -> None:
        raise RuntimeError("the schema migration failed (exit 1):\nrole refused")

    service = Service(
        "downstream-api",
        _fake(port, "--pid-file", pid_file),
        dict(os.environ),
        f"http://localhost:{port}/healthz",
        prepare=migrate,
    )
    code, output = _run_in_process([service], tmp_path, tls)

    assert code == 1
    assert "could not prepare downstream-api: the schema migration failed (exit 1):\nrole refused" in output
    assert not pid_file.exists()


def test_a_services_own_readiness_check_replaces_the_health_url(tmp_path: Path, tls: DevTls) -> None:
    port = free_port()
    checks: list[int] = []

    def ready() -> bool:
        checks.append(1)
        return False

    # The fake answers 200 on /healthz, but the service's own check (PostgreSQL: bootstrapped) decides.
    service = Service("postgres", _fake(port), dict(os.environ), f"http://localhost:{port}/healthz", ready=ready)
    code, output = _run_in_process([service], tmp_path, tls, ready_timeout=2.0)

    assert len(checks) > 1
    assert code == 1 and "timed out waiting for postgres" in output


def test_postgres_runs_between_the_emulator_and_downstream_api_with_no_password(tmp_path: Path, tls: DevTls) -> None:
    from devtools.postgres import DEFAULT_BIN

    if not (DEFAULT_BIN / "postgres").exists():
        pytest.fail(f"PostgreSQL 15 is not installed ({DEFAULT_BIN}); sudo apt-get install -y postgresql-15")
    local = tmp_path / "local"
    (local / "emulator").mkdir(parents=True)
    headers = {"web": "h-web", "api": "h-api", "downstream-api": "h-down", "database-admin": "h-admin"}
    (local / "emulator" / "managed-identity-headers.json").write_text(json.dumps(headers))

    services = default_services(tls, local, repo_root(), Ports().shifted(10000), db="postgres")

    names = [s.name for s in services]
    assert names == ["identity-emulator", "pgtoken", "postgres", "downstream-api", "api", "web"]
    pgtoken, postgres, downstream = services[1:4]
    assert pgtoken.ports == (18389,) and postgres.ports == (18432,)
    assert pgtoken.ready is not None and postgres.ready is not None
    assert "--authority" in pgtoken.argv and str(local / "postgres") in postgres.argv
    env = dict(downstream.env() if callable(downstream.env) else downstream.env)
    # The role, no password, TLS with the server checked against the dev CA.
    tls_query = urlencode({"sslmode": "verify-full", "sslrootcert": str(tls.ca_cert)})
    assert env["DOWNSTREAM_DATABASE_URL"] == f"postgresql+psycopg://downstream-api@127.0.0.1:18432/records?{tls_query}"
    assert "--tls-dir" in postgres.argv
    assert env["DOWNSTREAM_MIGRATE_ON_START"] == "false" and env["IDENTITY_HEADER"] == "h-down"
    assert downstream.prepare is not None
    # SQLite stays the default: no database services, no migration step.
    assert [s.name for s in default_services(tls, local, repo_root())][1] == "downstream-api"
