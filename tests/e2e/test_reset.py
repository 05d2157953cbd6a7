"""`make reset` (devtools/reset.py), over HTTP on a real stack: the demo state changed every way a workshop changes
it (a task, a share-able account deactivated over SCIM, a user disabled, another renamed, tenant-wide consent, a
revoked session, a web session), then reset: all of it back to the start, keys kept. A stack this clone did not
start is refused, changing nothing; a stopped stack is reset on disk."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from devtools.emulator_admin import EmulatorAdmin
from devtools.token import TokenError, device_code_token

from tests.support.doc_commands import terminal_env
from tests.support.launch import MAKE_RUN_STACK_OFFSET, RunningStack, start_stack
from tests.support.people import Person

pytestmark = pytest.mark.live


def _zt(local: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.cli", *args],
        env={**terminal_env(os.environ), "ZT_LOCAL_DIR": str(local)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _api(stack: RunningStack, user: str) -> httpx.Client:
    token = device_code_token(stack.info, user, quiet=True)
    return httpx.Client(
        base_url=stack.info["api"],
        verify=ssl.create_default_context(cafile=stack.info["ca_bundle"]),
        headers={"Authorization": f"Bearer {token}"},
    )


def _rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - our table names
    return count


def _signed_in_person(stack: RunningStack) -> Person:
    person = Person()
    r = person.get(f"{stack.web}/auth/login?next=/tasks")
    action, fields = person.sign_in_at_emulator(r.headers["location"], stack.info["demo_password"])
    assert person.post(action, fields).status_code == 303
    assert person.get(f"{stack.web}/tasks").status_code == 200
    return person


def test_reset_restores_the_demo_state_of_a_running_then_a_stopped_stack(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    stack = start_stack(local, MAKE_RUN_STACK_OFFSET)
    try:
        keys = sorted(p.name for p in (local / "emulator" / "signing-keys").iterdir())
        person = _signed_in_person(stack)
        with _api(stack, "alice@contoso.test") as alice:
            assert alice.post("/tasks", json={"title": "Before the reset"}).status_code == 201
        # As `make provision` does, in a process of its own (it sets the provisioner's managed identity up there).
        assert _zt(local, "provision", "create", "bob@contoso.test").returncode == 0
        assert _zt(local, "provision", "deactivate", "bob@contoso.test").returncode == 0
        admin = EmulatorAdmin(stack.info)
        admin.post("users/disable", upn="gwen@fabrikam.test")
        admin.post("users/rename", upn="dave@contoso.test", new_upn="david@contoso.test")
        admin.post("consent/grant", tenant="contoso", client="web", resource="api")
        admin.post("users/revoke-sessions", upn="alice@contoso.test")
        with _api(stack, "bob@contoso.test") as bob:
            assert bob.get("/tasks").status_code == 403  # deactivated
        with pytest.raises(TokenError, match="AADSTS50057"):
            device_code_token(stack.info, "gwen@fabrikam.test", quiet=True)
        assert "david@contoso.test" in admin.request("GET", "/admin", headers={"Accept": "text/html"}).text

        # Someone else's clone (no stack.json there) is refused, and nothing here changes.
        other = tmp_path / "other-clone"
        other.mkdir()
        refused = _zt(other, "reset", "--port-offset", str(MAKE_RUN_STACK_OFFSET))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "was not started from this clone" in refused.stderr
        assert _rows(local / "downstream" / "records.db", "records") == 1

        done = _zt(local, "reset")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "demo state is back to its start" in done.stdout
        assert "identity emulator (running)" in done.stdout and "deleted 1 tasks" in done.stdout

        with _api(stack, "alice@contoso.test") as alice:
            assert alice.get("/tasks").json() == []
        with _api(stack, "bob@contoso.test") as bob:
            assert bob.get("/tasks").status_code == 200  # provisioning undone
        assert device_code_token(stack.info, "gwen@fabrikam.test", quiet=True)  # enabled again
        view = admin.request("GET", "/admin", headers={"Accept": "text/html"}).text
        assert "dave@contoso.test" in view and "david@contoso.test" not in view
        answer = person.get(f"{stack.web}/tasks")  # the web session is gone: sign in again
        assert answer.status_code == 302 and answer.headers["location"].startswith("/auth/login"), answer.status_code
        assert sorted(p.name for p in (local / "emulator" / "signing-keys").iterdir()) == keys
        assert (local / "tls" / "ca.pem").exists() and (local / "emulator" / "demo-password").exists()

        # Changed again, then stopped: reset on disk.
        admin.post("users/disable", upn="gwen@fabrikam.test")
        with _api(stack, "alice@contoso.test") as alice:
            assert alice.post("/tasks", json={"title": "Before the second reset"}).status_code == 201
    finally:
        stack.process.send_signal(signal.SIGTERM)
        stack.process.wait(30)
    assert json.loads((local / "emulator" / "admin-state.json").read_text())["disabled"]
    stopped = _zt(local, "reset", "--port-offset", str(MAKE_RUN_STACK_OFFSET))
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "identity emulator (stopped)" in stopped.stdout
    assert not (local / "emulator" / "admin-state.json").exists()
    assert _rows(local / "downstream" / "records.db", "records") == 0
    assert _rows(local / "web" / "sessions.sqlite3", "sessions") == 0
