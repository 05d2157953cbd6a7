"""`make token` (zt token): a user access token for the api through the device code flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.launch import LiveEmulator

from .helpers import claims_of


def _zt_token(live: LiveEmulator, local: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZT_LOCAL_DIR": str(local)}
    return subprocess.run(
        [sys.executable, "-m", "devtools.cli", "token", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_zt_token_prints_an_api_token_for_the_user(live: LiveEmulator, tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({**live.info, "ca_bundle": str(live.tls.ca_bundle)}))
    done = _zt_token(live, tmp_path, "--user", "bob@contoso.test")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    claims = claims_of(token)
    assert claims["aud"] == live.app_id("api")
    assert claims["preferred_username"] == "bob@contoso.test"
    assert set(claims["scp"].split()) == {"Tasks.Read", "Tasks.ReadWrite"}
    assert "enter the code" in done.stderr


def test_zt_token_explains_what_to_do_without_a_running_stack(live: LiveEmulator, tmp_path: Path) -> None:
    done = _zt_token(live, tmp_path, "--user", "alice@contoso.test")
    assert done.returncode == 1
    assert "make run" in done.stderr and "Traceback" not in done.stderr


def test_zt_token_refuses_an_unknown_user_clearly(live: LiveEmulator, tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({**live.info, "ca_bundle": str(live.tls.ca_bundle)}))
    done = _zt_token(live, tmp_path, "--user", "mallory@contoso.test")
    assert done.returncode == 1
    assert "not a demo user" in done.stderr and "alice@contoso.test" in done.stderr
