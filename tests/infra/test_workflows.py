"""The GitHub workflows gate on security and deploy with no stored secret (articles 24 and 27).

zizmor (offline, its strictest persona) reports nothing outside .github/zizmor.yml's reviewed list, and the
project's own rules (devtools.workflow_rules) hold: actions pinned by SHA, nothing writable by default, an
OIDC token only for a job behind a protected environment, no stored Azure secret, no persisted checkout
credentials. Each rule is proved on a copy of the real workflows weakened in exactly one way.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from devtools.gate_runs import zizmor_argv
from devtools.paths import repo_root
from devtools.workflow_rules import check_workflows

from devtools.gates import tool_env

pytestmark = [
    pytest.mark.guidance("secure-devops-environments-zero-trust"),
    pytest.mark.guidance("embed-zero-trust-dev-workflow"),
]

ROOT = repo_root()
WORKFLOWS = ROOT / ".github" / "workflows"
PINNED_CHECKOUT = re.compile(r"actions/checkout@[0-9a-f]{40} # v[\d.]+")


def _load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True)
    return data


def _zizmor(workflows: Path) -> tuple[int, str]:
    import subprocess

    argv = zizmor_argv(ROOT, workflows)
    result = subprocess.run(argv, capture_output=True, text=True, env=tool_env(), timeout=120, check=False)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.live
def test_zizmor_reports_nothing_outside_the_reviewed_list() -> None:
    code, output = _zizmor(WORKFLOWS)
    assert code == 0, output
    assert "No findings to report" in output
    # The reviewed list stays small and every entry carries its reason.
    config = (ROOT / ".github" / "zizmor.yml").read_text()
    assert set(yaml.safe_load(config)["rules"]) == {"self-repository"}


def test_the_workflows_keep_every_rule() -> None:
    assert check_workflows(WORKFLOWS) == []


def test_ci_runs_every_gate_and_the_python_matrix() -> None:
    ci = _load("ci.yml")
    runs = " ".join(str(step.get("run", "")) for job in ci["jobs"].values() for step in job.get("steps", []))
    for gate in (".ci/run", "make lint", "make gates", "make audit", "make sbom", "devtools/test-pythons.sh"):
        assert gate in runs, gate
    assert ci["jobs"]["pythons"]["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    assert "pull_request_target" not in ci["on"]
    assert ci["permissions"] == {}
    uploads = [s for s in ci["jobs"]["sbom"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads and uploads[0]["with"]["path"] == "test-artifacts/sbom/"


def test_only_the_deploy_jobs_get_an_oidc_token_and_each_through_an_environment() -> None:
    tokens = {
        (name, job_name): job
        for name in ("ci.yml", "deploy.yml")
        for job_name, job in _load(name)["jobs"].items()
        if (job.get("permissions") or {}).get("id-token") == "write"
    }
    assert set(tokens) == {("deploy.yml", "developer"), ("deploy.yml", "administrator")}
    environments = {job["environment"]["name"] for job in tokens.values()}
    assert environments == {"azure-developer", "azure-administrator"}, "each stage signs in as its own identity"
    deploy = _load("deploy.yml")
    assert deploy["permissions"] == {}
    assert deploy["jobs"]["developer"]["needs"] == "ci" and deploy["jobs"]["administrator"]["needs"] == "developer"
    login = [s for s in deploy["jobs"]["developer"]["steps"] if str(s.get("uses", "")).startswith("azure/login@")]
    assert login and login[0]["with"]["client-id"] == "${{ vars.AZURE_CLIENT_ID }}"
    assert "secrets." not in (WORKFLOWS / "deploy.yml").read_text()


# (what to change in which file, the one rule that must then fail)
WEAKENINGS = {
    "unpinned action": ("ci.yml", lambda t: PINNED_CHECKOUT.sub("actions/checkout@v4", t, count=1), "unpinned-action"),
    "write-all": ("ci.yml", lambda t: t.replace("permissions: {}", "permissions: write-all", 1), "permissions-broad"),
    "stored Azure secret": (
        "deploy.yml",
        lambda t: t.replace(
            '      ARM_USE_OIDC: "true"\n', "      ARM_CLIENT_SECRET: ${{ secrets.AZURE_CLIENT_SECRET }}\n", 1
        ),
        "stored-secret",
    ),
    "no environment": (
        "deploy.yml",
        lambda t: t.replace("    environment:\n      name: azure-developer\n", "", 1),
        "oidc-without-environment",
    ),
    "persisted checkout credentials": (
        "ci.yml",
        lambda t: t.replace("persist-credentials: false", "persist-credentials: true", 1),
        "checkout-credentials",
    ),
    "pull_request_target": (
        "ci.yml",
        lambda t: t.replace("  pull_request:\n", "  pull_request_target:\n", 1),
        "dangerous-trigger",
    ),
    "contents: write": (
        "ci.yml",
        lambda t: t.replace("contents: read # checkout", "contents: write", 1),
        "permissions-write",
    ),
    "no version comment": (
        "ci.yml",
        lambda t: re.sub(r"(actions/checkout@[0-9a-f]{40}) # v[\d.]+", r"\1", t, count=1),
        "version-comment",
    ),
}


def _weakened(tmp_path: Path, name: str) -> Path:
    # zizmor collects workflows from a folder named .github/workflows.
    target = tmp_path / ".github" / "workflows"
    shutil.copytree(WORKFLOWS, target)
    file, change, _ = WEAKENINGS[name]
    before = (target / file).read_text()
    after = change(before)
    assert after != before, f"the weakening {name!r} found nothing to change in {file}"
    (target / file).write_text(after)
    return target


@pytest.mark.parametrize("name", sorted(WEAKENINGS))
def test_each_weakening_is_named_exactly(tmp_path: Path, name: str) -> None:
    file, _, rule = WEAKENINGS[name]
    problems = check_workflows(_weakened(tmp_path, name))
    assert {(p.file, p.rule) for p in problems} == {(file, rule)}, "\n".join(map(str, problems))


@pytest.mark.live
def test_zizmor_fails_on_an_unpinned_action_too(tmp_path: Path) -> None:
    code, output = _zizmor(_weakened(tmp_path, "unpinned action"))
    assert code != 0
    assert "unpinned-uses" in output and "actions/checkout@v4" in output
