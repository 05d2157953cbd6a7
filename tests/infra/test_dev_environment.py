"""The developer environment runs the pipeline's gates before a commit leaves the laptop (article 26).

The dev container is CI's machine (same pinned base) with a non-root user, only the stack's ports and no
secret; the git hooks are all local and run the project's locked tools; the gates find what they must.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path

import pytest
import yaml
from devtools.gate_runs import OFFLINE_GATES, offline
from devtools.layout import Ports
from devtools.paths import repo_root

from devtools.gates import offline_command, tool_command, tool_env
from tests.security.secretscan import main as secret_scan

pytestmark = [
    pytest.mark.guidance("secure-dev-environment-zero-trust"),
    pytest.mark.guidance("embed-zero-trust-dev-workflow"),
]

ROOT = repo_root()
DEVCONTAINER = ROOT / ".devcontainer"
PINNED_IMAGE = re.compile(r"^FROM (\S+@sha256:[0-9a-f]{64})\s*$", re.MULTILINE)


def _devcontainer() -> dict:
    # devcontainer.json is JSON with comments; this one keeps them on lines of their own.
    lines = (DEVCONTAINER / "devcontainer.json").read_text().splitlines()
    return json.loads("\n".join(line for line in lines if not line.lstrip().startswith("//")))


def _installer_packages() -> set[str]:
    # The packages devtools/install.sh can install: the labels of its `present()` case.
    text = (ROOT / "devtools" / "install.sh").read_text()
    return set(re.findall(r"^\s+([a-z0-9.-]+)\) ", text, re.MULTILINE))


def test_the_dev_container_is_ci_s_machine_with_a_non_root_user() -> None:
    config = _devcontainer()
    assert config["remoteUser"] not in ("root", "0") and config["containerUser"] == config["remoteUser"]
    dockerfile = (DEVCONTAINER / config["build"]["dockerfile"]).read_text()
    [image] = PINNED_IMAGE.findall(dockerfile)
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert ci["jobs"]["test"]["container"]["image"] == image, "the dev container and CI's tests share one base"
    # ... and the services' images: what is developed and tested is what runs.
    for service in ("web", "api", "downstream-api", "identity-emulator", "devtools"):
        assert set(PINNED_IMAGE.findall((ROOT / service / "Dockerfile").read_text())) == {image}, service
    assert re.search(r"^USER \$\{USERNAME\}$", dockerfile, re.MULTILINE) and "ARG USERNAME=dev" in dockerfile
    installed = set(re.search(r"--no-install-recommends\s*\\\n\s*([^\\]+)\\", dockerfile).group(1).split())
    assert _installer_packages() <= installed, "every Debian package the installer knows is in the image"
    assert config["postCreateCommand"].startswith("devtools/install.sh")


def test_the_dev_container_forwards_only_the_stack_s_ports_and_holds_no_secret() -> None:
    config = _devcontainer()
    ports = Ports()
    assert config["forwardPorts"] == [ports.web, ports.api, ports.downstream, ports.emulator, ports.emulator_front]
    assert config["otherPortsAttributes"]["onAutoForward"] == "ignore"
    assert "mounts" not in config and "runArgs" not in config
    assert all(not re.search(r"SECRET|TOKEN|PASSWORD|KEY", name) for name in config.get("containerEnv", {}))
    text = (DEVCONTAINER / "devcontainer.json").read_text() + (DEVCONTAINER / "Dockerfile").read_text()
    assert not re.search(r"(?i)\.azure|\.ssh|client_secret|ARG \w*(SECRET|TOKEN|PASSWORD)", text)


def test_every_git_hook_is_local_and_runs_the_locked_tools() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    required = {"ruff-check", "ruff-format", "secret-scan", "registration-rules", "workflow-rules", "yamllint"}
    assert required <= set(hooks)
    for hook in hooks.values():
        assert hook["language"] == "system", hook["id"]
        assert hook["entry"].startswith("python3 -m uv run --frozen "), hook["id"]
    # Each gate the hooks name exists in devtools.gate_runs.
    for hook in hooks.values():
        if "gate_runs offline" in hook["entry"]:
            assert set(hook["entry"].split("offline", 1)[1].split()) <= set(OFFLINE_GATES)


def test_the_secret_hook_refuses_a_planted_secret_and_passes_a_clean_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "settings.py").write_text(f'client_secret = "{secrets.token_hex(20)}"\n')
    (tmp_path / "clean.py").write_text('greeting = "hello"\n')
    (tmp_path / "deploy.pem").write_text("not even a key\n")
    assert secret_scan(["clean.py"]) == 0
    assert secret_scan(["settings.py"]) == 1
    assert "settings.py:1: Secret Keyword" in capsys.readouterr().out
    assert secret_scan(["deploy.pem"]) == 1
    assert "deploy.pem: local state or a key/certificate file" in capsys.readouterr().out


@pytest.mark.live
def test_the_hook_config_is_valid_for_pre_commit() -> None:
    result = subprocess.run(
        [*tool_command("pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.live
def test_bandit_and_yamllint_pass_on_the_repository() -> None:
    assert offline(["bandit", "yamllint", "workflows"]) == 0


@pytest.mark.live
def test_bandit_fails_on_a_shell_call(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "run.py").write_text(
        "import subprocess\n\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n"
    )
    argv = [*tool_command("bandit"), "-q", "-c", str(ROOT / "pyproject.toml"), "-r", "src"]
    result = subprocess.run(
        argv, cwd=tmp_path, capture_output=True, text=True, env=tool_env(), timeout=120, check=False
    )
    assert result.returncode == 1 and "B602" in result.stdout, result.stdout + result.stderr


def _checkov(*targets: Path) -> subprocess.CompletedProcess[str]:
    dirs = [arg for target in targets for arg in ("-d", str(target))]
    argv = [*offline_command("checkov"), *dirs, "--framework", "github_actions", "dockerfile", "--compact", "--quiet"]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=tool_env(), timeout=300, check=False)


@pytest.mark.live
def test_checkov_passes_the_workflows_and_the_dev_container() -> None:
    result = _checkov(ROOT / ".github", DEVCONTAINER)
    assert result.returncode == 0, result.stdout + result.stderr
    for framework in ("github_actions", "dockerfile"):
        assert f"{framework} scan results" in result.stdout, result.stdout


@pytest.mark.live
def test_checkov_fails_a_dev_container_that_runs_as_root(tmp_path: Path) -> None:
    text = (DEVCONTAINER / "Dockerfile").read_text()
    (tmp_path / "Dockerfile").write_text(text.replace("USER ${USERNAME}\n", ""))
    result = _checkov(tmp_path)
    assert result.returncode == 1 and "CKV_DOCKER_3" in result.stdout, result.stdout + result.stderr
