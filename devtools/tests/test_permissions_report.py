"""`zt permissions-report` on fixtures: a permission deliberately granted and never used is flagged."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from devtools.cli import main
from devtools.permissions import ClientReport, Grant, granted, render, report, used

pytestmark = pytest.mark.guidance("overprivileged-permissions")

WEB, CLI, DAEMON, API = (f"0000000{i}-0000-4000-8000-000000000000" for i in range(1, 5))

MANIFEST: dict[str, Any] = {
    "applications": {
        "web": {
            "application_id": WEB,
            "required_resource_access": {"api": {"scopes": ["Things.Read", "Things.ReadWrite"]}},
        },
        "cli": {"application_id": CLI, "required_resource_access": {"api": {"scopes": ["Things.Read"]}}},
        "daemon": {"application_id": DAEMON, "required_resource_access": {"api": {"app_roles": ["Things.Report.All"]}}},
        "api": {
            "application_id": API,
            "scopes": [{"value": "Things.Read"}, {"value": "Things.ReadWrite"}],
            "pre_authorized_applications": [{"application": "cli", "scopes": ["Things.Read", "Things.ReadWrite"]}],
        },
    }
}
DIRECTORY = {
    "tenants": {
        "contoso": {"admin_consents": [{"client": "daemon", "resource": "api", "app_roles": ["Things.Export.All"]}]}
    }
}


def line(
    client: str,
    permissions: list[str],
    token_type: str = "delegated",
    status: int = 200,
    accepted: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    return {
        "time": "2026-01-01T00:00:00.000+00:00",
        "service": "api",
        "client_app_id": client,
        "token_type": token_type,
        "tenant_id": "t",
        "permissions": permissions,
        "route": "/things",
        "method": "GET",
        "status": status,
        **({"accepted": accepted} if accepted is not None else {}),
    }


# What the api's read and write routes accept, least privileged first (as zerotrust.protect records it).
READS = {"Things.Read": ["Things.Read", "Things.ReadWrite"], "Things.ReadWrite": ["Things.Read", "Things.ReadWrite"]}
WRITES = {"Things.ReadWrite": ["Things.ReadWrite"]}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    manifest, directory, audit = tmp_path / "registrations.yaml", tmp_path / "directory.yaml", tmp_path / "audit"
    manifest.write_text(yaml.safe_dump(MANIFEST))
    directory.write_text(yaml.safe_dump(DIRECTORY))
    audit.mkdir()
    lines = [
        line(WEB, ["Things.Read"]),
        line(WEB, ["Things.Read"]),  # the web app only ever reads: Things.ReadWrite is granted for nothing
        line(CLI, ["Things.Read"]),
        line(CLI, ["Things.ReadWrite"], status=503),  # a failed request is no evidence of need
        line(DAEMON, ["Things.Report.All"], "app-only"),
    ]
    (audit / "api.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"torn": ')
    return {"manifest": manifest, "directory": directory, "audit": audit}


def test_granted_comes_from_requested_permissions_preauthorization_and_admin_consent() -> None:
    grants = granted(MANIFEST, DIRECTORY)
    assert grants["cli"] == {Grant("api", "scope", "Things.Read"), Grant("api", "scope", "Things.ReadWrite")}
    assert grants["daemon"] == {
        Grant("api", "app role", "Things.Report.All"),
        Grant("api", "app role", "Things.Export.All"),
    }


READ_ONLY_USE = (
    "  granted: api/Things.Read, api/Things.ReadWrite\n  used:    api/Things.Read\n  UNUSED:  api/Things.ReadWrite\n"
)


def test_the_deliberately_unused_grants_are_flagged_and_only_those(files: dict[str, Path]) -> None:
    out = io.StringIO()
    unused = render(report(MANIFEST, DIRECTORY, [files["audit"]]), out)
    text = out.getvalue()
    assert unused == 3
    assert f"web\n{READ_ONLY_USE}" in text
    assert f"cli\n{READ_ONLY_USE}" in text
    assert "daemon\n" in text and "UNUSED:  api/Things.Export.All (app role)\n" in text
    assert "3 granted permission(s) unused, 0 reducible to a narrower one." in text


def test_strict_fails_on_unused_and_passes_once_everything_is_used(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["permissions-report", "--manifest", str(files["manifest"]), "--directory", str(files["directory"])]
    args += ["--audit", str(files["audit"])]
    assert main(args) == 0  # report only
    assert main([*args, "--strict"]) == 1
    assert "UNUSED:  api/Things.ReadWrite" in capsys.readouterr().out

    more = [
        line(WEB, ["Things.ReadWrite"], accepted=WRITES),
        line(CLI, ["Things.ReadWrite"], accepted=WRITES),
        line(DAEMON, ["Things.Export.All"], "app-only"),
    ]
    (files["audit"] / "more.jsonl").write_text("".join(json.dumps(x) + "\n" for x in more))
    assert main([*args, "--strict"]) == 0
    out = capsys.readouterr().out
    assert "UNUSED" not in out and "REDUCIBLE" not in out
    assert "Every granted permission was used, and none was broader than its calls needed." in out


def test_a_write_permission_only_ever_used_to_read_is_reducible_to_read(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The web app holds only Things.ReadWrite and reads with it: every call would have taken Things.Read."""
    manifest = {**MANIFEST, "applications": {**MANIFEST["applications"]}}
    manifest["applications"]["web"] = {
        "application_id": WEB,
        "required_resource_access": {"api": {"scopes": ["Things.ReadWrite"]}},
    }
    files["manifest"].write_text(yaml.safe_dump(manifest))
    reads = [line(WEB, ["Things.ReadWrite"], accepted=READS)] * 2
    (files["audit"] / "api.jsonl").write_text("".join(json.dumps(x) + "\n" for x in reads))
    args = ["permissions-report", "--manifest", str(files["manifest"]), "--directory", str(files["directory"])]
    assert main([*args, "--audit", str(files["audit"]), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "  REDUCIBLE: api/Things.ReadWrite -> Things.Read (every call made with it would have taken that)\n" in out
    # One write among the reads: the broader permission was needed after all.
    (files["audit"] / "write.jsonl").write_text(json.dumps(line(WEB, ["Things.ReadWrite"], accepted=WRITES)) + "\n")
    main([*args, "--audit", str(files["audit"])])
    assert "REDUCIBLE: api/Things.ReadWrite" not in capsys.readouterr().out


def test_a_graph_permission_broader_than_its_calls_is_reducible_and_older_lines_count_as_needed() -> None:
    """Graph's lines (the emulator's) name what each call would have accepted: GroupMember.Read.All used
    only to list ids (User.Read would do) is reducible; a line without `accepted` is taken as needed."""
    manifest = {
        "applications": {
            "downstream-api": {
                "application_id": API,
                "required_resource_access": {"graph": {"scopes": ["GroupMember.Read.All"]}},
            },
            "web": {"application_id": WEB, "required_resource_access": {"graph": {"scopes": ["Directory.Read.All"]}}},
        }
    }
    membership = ["User.Read", "GroupMember.Read.All", "User.Read.All", "Directory.Read.All"]
    lines = [
        {**line(API, ["GroupMember.Read.All"], accepted={"GroupMember.Read.All": membership}), "service": "graph"},
        {**line(WEB, ["Directory.Read.All"]), "service": "graph"},
    ]
    uses = used(manifest, lines)
    down = ClientReport("downstream-api", {Grant("graph", "scope", "GroupMember.Read.All")}, uses["downstream-api"])
    assert down.reducible == {Grant("graph", "scope", "GroupMember.Read.All"): Grant("graph", "scope", "User.Read")}
    web = ClientReport("web", {Grant("graph", "scope", "Directory.Read.All")}, uses["web"])
    assert web.reducible == {} and web.unused == set()


def test_a_missing_audit_log_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["permissions-report", "--audit", str(tmp_path / "nowhere")]) == 2
    assert "no audit log" in capsys.readouterr().err
