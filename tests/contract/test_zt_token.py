"""`make token` (zt token): a user access token for the api through the device code flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from devtools.layout import MULTI_TENANT_APPS

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
    # It approves the device code itself: it says so and asks the person for nothing.
    assert "Signing in as bob@contoso.test on the identity provider's device login page" in done.stderr
    assert "nothing to do" in done.stderr and "enter the code" not in done.stderr


def test_zt_token_explains_what_to_do_without_a_running_stack(live: LiveEmulator, tmp_path: Path) -> None:
    done = _zt_token(live, tmp_path, "--user", "alice@contoso.test")
    assert done.returncode == 1
    assert "make run" in done.stderr and "Traceback" not in done.stderr


def test_zt_token_refuses_an_unknown_user_clearly(live: LiveEmulator, tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({**live.info, "ca_bundle": str(live.tls.ca_bundle)}))
    done = _zt_token(live, tmp_path, "--user", "mallory@contoso.test")
    assert done.returncode == 1
    assert "not a demo user" in done.stderr and "alice@contoso.test" in done.stderr


def test_zt_token_passes_on_the_identity_providers_refusal_and_what_to_do(
    emulator_factory: Callable[..., LiveEmulator], tmp_path: Path
) -> None:
    # Multi-tenant mode as `make run TENANTS=contoso,fabrikam` sets it (devtools.layout): carol is in fabrikam,
    # and the CLI registration stays contoso's alone.
    live = emulator_factory(multi_tenant_apps=",".join(MULTI_TENANT_APPS))
    (tmp_path / "stack.json").write_text(json.dumps({**live.info, "ca_bundle": str(live.tls.ca_bundle)}))
    done = _zt_token(live, tmp_path, "--user", "carol@fabrikam.test")
    assert done.returncode == 1 and done.stdout == ""
    assert "AADSTS50020: User account 'carol@fabrikam.test' from identity provider does not exist in tenant" in (
        done.stderr
    )
    assert "single-tenant" in done.stderr and "make token USER=alice@contoso.test" in done.stderr
    assert "HTTP 400" not in done.stderr and "Traceback" not in done.stderr
