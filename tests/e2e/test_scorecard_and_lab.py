"""The attack catalogue against the real stack: `zt scorecard` at the api and downstream-api, and the web
app's attack lab fired by a signed-in person. Every attack is stopped, and no token is ever shown."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from devtools.attacks import ATTACKS
from devtools.paths import repo_root
from zerotrust.redact import JWT_SHAPE

from tests.e2e.test_chain import assert_no_token_reached_the_browser, csrf, sign_in
from tests.support.launch import RunningStack
from tests.support.people import Person

pytestmark = pytest.mark.guidance("protect-api")

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")


def test_scorecard_against_the_stack_passes_everything_and_never_prints_the_token(stack: RunningStack) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ZT_TOKEN"}
    env["ZT_LOCAL_DIR"] = str(stack.local_dir)
    run = subprocess.run(
        [sys.executable, "-m", "devtools.cli", "scorecard"],
        env=env,
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    lines = run.stdout.splitlines()
    summary = SUMMARY.match(lines[-1])
    assert summary, lines[-1]
    # The api: the real-token check and every attack but audience-confusion; downstream-api: every attack.
    assert summary.groups() == (str(2 * len(ATTACKS)), "0")
    results = [line for line in lines if re.search(r"  (PASS|FAIL|SKIP|ERROR)  ", line)]
    assert len(results) == 2 * len(ATTACKS) + 1
    assert [line.split()[:2] for line in results if " SKIP " in line] == [["audience-confusion", "api"]]
    assert re.search(
        r"^audience-confusion +downstream-api +401 invalid_token +401 invalid_token +PASS ", run.stdout, re.M
    )
    assert not JWT_SHAPE.search(run.stdout + run.stderr)


def test_the_attack_lab_fires_everything_at_the_api_and_every_attack_is_stopped(stack: RunningStack) -> None:
    alice = Person()
    sign_in(alice, stack, "alice@contoso.test", "/lab")
    page = alice.get(f"{stack.web}/lab")
    assert page.status_code == 200 and re.search(r'<a href="/lab"[^>]*>Attack lab</a>', page.text)  # maybe aria-current

    r = alice.post(f"{stack.web}/lab", {"csrf_token": csrf(page.text), "attack": "all"})
    assert r.status_code == 200, r.text[:500]
    fired = [a for a in ATTACKS if not a.needs_other_audience]
    assert f"{len(fired)} passed, 0 failed, 1 skipped." in r.text
    for attack in ATTACKS:
        row = re.search(rf'<tr id="{re.escape(attack.id)}">(.*?)</tr>', r.text, re.S)
        assert row, attack.id
        if attack.needs_other_audience:
            assert ">SKIP<" in row.group(1)
            continue
        assert ">PASS<" in row.group(1), attack.id
        assert f"HTTP {attack.status}" in row.group(1)
        assert "WWW-Authenticate: Bearer realm=&#34;api&#34;" in row.group(1)
    assert_no_token_reached_the_browser(alice)


def test_the_attack_lab_fires_one_attack_and_refuses_a_post_without_csrf(stack: RunningStack) -> None:
    bob = Person()
    sign_in(bob, stack, "bob@contoso.test", "/lab")
    token = csrf(bob.get(f"{stack.web}/lab").text)
    r = bob.post(f"{stack.web}/lab", {"csrf_token": token, "attack": "hs256-public-key"})
    assert r.status_code == 200 and "1 passed, 0 failed." in r.text
    assert "error=&#34;invalid_token&#34;" in r.text
    assert bob.post(f"{stack.web}/lab", {"attack": "all"}).status_code == 403
    assert_no_token_reached_the_browser(bob)
