from __future__ import annotations

from pathlib import Path

import pytest
from devtools.cli import main
from devtools.paths import local_dir, repo_root


def test_token_without_a_running_stack_says_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZT_LOCAL_DIR", str(tmp_path))
    assert main(["token", "--user", "alice@contoso.test"]) == 1
    assert "make run" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "run" in capsys.readouterr().err


def test_repo_root_is_the_workspace() -> None:
    root = repo_root()
    assert (root / "uv.lock").is_file()
    assert (root / "devtools" / "src" / "devtools" / "paths.py").is_file()


def test_local_dir_defaults_to_dot_local_and_honours_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZT_LOCAL_DIR", raising=False)
    assert local_dir() == repo_root() / ".local"
    monkeypatch.setenv("ZT_LOCAL_DIR", str(tmp_path))
    assert local_dir() == tmp_path.resolve()


def test_run_with_postgres_missing_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZT_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("ZT_POSTGRES_BIN", str(tmp_path / "no-postgres-here"))
    assert main(["run", "--db", "postgres", "--port-offset", "11900"]) == 1
    err = capsys.readouterr().err
    assert "zt run: PostgreSQL 15 is not installed" in err and "sudo apt-get install -y postgresql-15" in err
    assert not (tmp_path / "local" / "stack.json").exists()
