"""`zt permissions-report --strict` on a full stack, after a representative workload: it passes.

# zt: overprivileged-permissions
The workload is what the app is for, by every client it registers: people on the web app (read, write,
the identity chain, dave's share page with his 211 groups named, the organization view after an
administrator's tenant-wide consent), the CLI (a read and a write), the daemon's tenant report, the
provisioning client's SCIM read, and the demo administrator's directory call. Every tier's audit line,
and the emulator's Graph line, names the permission each call used; the report then finds no granted
permission unused and none broader than its calls needed. A permission planted in a copy of the
registrations fails --strict, naming it.

On a stack of its own: the administrator's tenant-wide consent granted here would change what the session
stack's tests are asked and refused (the api's own on-behalf-of request without admin consent, say).
"""

from __future__ import annotations

import re
import signal
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from devtools.paths import repo_root
from devtools.token import device_code_token

from tests.e2e.test_chain import csrf, sign_in
from tests.support.launch import MAKE_RUN_STACK_OFFSET, RunningStack, start_stack, zt
from tests.support.people import Person

pytestmark = pytest.mark.guidance("overprivileged-permissions")

DAVES_GROUP_137 = "project-137"


def _write_a_task(person: Person, stack: RunningStack, title: str) -> None:
    page = person.get(f"{stack.web}/tasks")
    r = person.consent_if_asked(person.post(f"{stack.web}/tasks", {"csrf_token": csrf(page.text), "title": title}))
    assert r.status_code == 303 and r.headers["location"] == "/tasks", r.text[:300]


def _people_on_the_web_app(stack: RunningStack) -> None:
    alice = Person()
    sign_in(alice, stack, "alice@contoso.test")
    _write_a_task(alice, stack, "Permissions workload: alice's write")
    assert alice.get(f"{stack.web}/chain").status_code == 200  # the api asks Graph for her profile

    dave = Person()
    sign_in(dave, stack, "dave@contoso.test")
    _write_a_task(dave, stack, "Permissions workload: dave shares")
    task = _task_ids(dave.get(f"{stack.web}/tasks").text)[0]
    share = dave.get(f"{stack.web}/tasks/{task}/share")
    # zt: configure-tokens-group-claims-app-roles - his 211 groups, by name, ids a click away.
    assert share.status_code == 200 and f">{DAVES_GROUP_137}</option>" in share.text
    assert "Your 211 groups' object ids" in share.text

    # The organization view needs Tasks.Read.All, which only an administrator grants, for the tenant.
    granted = stack.administrator.request(
        "POST", "/admin/consent/grant", data={"tenant": "contoso", "client": "web", "resource": "api"}
    )
    assert granted.status_code == 200, granted.text
    bob = Person()
    sign_in(bob, stack, "bob@contoso.test", "/organization")
    org = bob.get(f"{stack.web}/organization")
    # Owners by name (Graph, User.ReadBasic.All, read by downstream-api), object ids a click away.
    assert org.status_code == 200 and "<summary>Dave Davis</summary>" in org.text, org.text[:2000]


def _task_ids(page: str) -> list[str]:
    return re.findall(r'href="/tasks/([A-Za-z0-9_-]+)/share"', page)


def _the_cli(stack: RunningStack) -> None:
    info = {**stack.info, "ca_bundle": str(stack.info["ca_bundle"])}
    read, write = stack.info["api_scopes"]
    tls = ssl.create_default_context(cafile=str(stack.info["ca_bundle"]))
    with httpx.Client(base_url=str(stack.info["api"]), verify=tls, timeout=15, trust_env=False) as api:
        token = device_code_token(info, "alice@contoso.test", [read], quiet=True)
        assert api.get("/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        token = device_code_token(info, "alice@contoso.test", [write], quiet=True)
        created = api.post("/tasks", json={"title": "from the CLI"}, headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.text
    # The administrator's directory call, as the CLI makes it (Directory.AccessAsUser.All).
    assert stack.administrator.stats()["token_requests"] > 0


def _app_only_clients(stack: RunningStack) -> None:
    # As `make report` and `make provision` run them: processes of their own, each its managed identity.
    daemon = zt(stack, "daemon")
    assert daemon.returncode == 0, daemon.stderr
    scim = zt(stack, "provision", "show", "alice@contoso.test")
    assert scim.returncode == 0 and "HTTP 200" in scim.stderr, scim.stderr


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("permissions-stack"), MAKE_RUN_STACK_OFFSET)
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(30)


@pytest.fixture(scope="module")
def workload(stack: RunningStack) -> Path:
    """The audit folder after every client has done what it is for."""
    _people_on_the_web_app(stack)
    _the_cli(stack)
    _app_only_clients(stack)
    return stack.local_dir / "audit"


def test_strict_passes_on_a_full_stack_after_the_workload(stack: RunningStack, workload: Path) -> None:
    r = zt(stack, "permissions-report", "--strict", "--audit", str(workload))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Every granted permission was used, and none was broader than its calls needed." in r.stdout
    # Graph's grants count now (the emulator's audit lines): downstream-api used both of its own.
    down = r.stdout.split("\ndownstream-api\n")[1].split("\n")[1]
    assert "graph/GroupMember.Read.All" in down and "graph/User.Read" in down, r.stdout


def test_a_planted_over_grant_fails_strict_and_is_named(stack: RunningStack, workload: Path, tmp_path: Path) -> None:
    registrations = yaml.safe_load((repo_root() / "infra" / "registrations.yaml").read_text())
    web = registrations["applications"]["web"]["required_resource_access"]
    web["graph"]["scopes"] = [*web["graph"]["scopes"], "Directory.Read.All"]
    planted = tmp_path / "registrations.yaml"
    planted.write_text(yaml.safe_dump(registrations))
    r = zt(stack, "permissions-report", "--strict", "--manifest", str(planted), "--audit", str(workload))
    assert r.returncode == 1, r.stdout + r.stderr
    block = r.stdout.split("\nweb\n")[1]
    assert block.split("\n")[2] == "  UNUSED:  graph/Directory.Read.All", r.stdout
    assert "1 granted permission(s) unused, 0 reducible to a narrower one." in r.stdout
