"""The gate tools come from their own locked environment, and say how to install it when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools import gates


def test_every_gate_tool_is_installed_from_the_gates_lock() -> None:
    for name in gates.TOOLS:
        [path] = gates.tool_command(name)
        assert Path(path).is_file(), name
        assert Path(path).parent.parent == gates.gates_dir() / ".venv"
    assert (gates.gates_dir() / "uv.lock").is_file()


def test_a_missing_environment_names_the_installer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gates, "gates_dir", lambda: tmp_path)
    with pytest.raises(gates.GateToolMissing, match=r"devtools/install\.sh"):
        gates.tool_command("checkov")


def test_an_unknown_tool_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown gate tool 'trivy'"):
        gates.tool_command("trivy")


def test_checkov_and_zizmor_run_with_their_offline_switches() -> None:
    assert gates.offline_command("checkov")[-1] == "--skip-download"
    assert gates.offline_command("zizmor")[-1] == "--offline"
    env = gates.tool_env({"PATH": "/usr/bin"})
    assert env["CKV_SKIP_PACKAGE_UPDATE_CHECK"] == "true" and env["BC_SKIP_MAPPING"] == "TRUE"
    assert env["PATH"] == "/usr/bin"


@pytest.mark.live
@pytest.mark.parametrize("name", ["zizmor", "bandit", "yamllint"])
def test_the_quick_tools_start(name: str) -> None:
    result = gates.run_tool(name, ["--version"], timeout=60)
    assert result.returncode == 0, result.stderr
