"""Assume breach, and assume failure: under load, each tier is killed in turn and started again by the
platform (here `zt run --restart`, as Container Apps restarts a failed replica). While it is down the
others answer 503 fast (never a 500, never a hang); afterwards everything works again without restarting
anything else; no write that was acknowledged is lost."""

from __future__ import annotations

import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from devtools.token import device_code_token

from tests.e2e.test_chain import sign_in
from tests.support.launch import RESTARTING_STACK_OFFSET, RunningStack, start_stack
from tests.support.people import Person

pytestmark = pytest.mark.guidance("identity-iam-development-best-practices")

# The tiers, by the module each runs (`python -m <module>`), in the order they are killed.
TIERS = {"downstream-api": "downstream_api", "api": "api", "web": "web", "identity-emulator": "identity_emulator"}
# A request that takes longer than this hangs: every hop's own timeout is shorter.
HANG_SECONDS = 12.0
RECOVERY_SECONDS = 60.0


@pytest.fixture(scope="module")
def restarting_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    command = [sys.executable, "-m", "devtools.cli", "run", "--port-offset", str(RESTARTING_STACK_OFFSET), "--restart"]
    running = start_stack(tmp_path_factory.mktemp("restarting"), RESTARTING_STACK_OFFSET, command)
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(30)


@dataclass
class Load:
    """Writes through the api and pages through the web app, until stopped, remembering every answer."""

    api: httpx.Client
    web: Person
    web_url: str
    answers: list[tuple[str, int | str, float]] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _timed(self, label: str, call: object) -> httpx.Response | None:
        started = time.monotonic()
        try:
            answer = call()  # type: ignore[operator]
        except httpx.TransportError as exc:  # the tier itself is down: nothing answered
            self.answers.append((label, type(exc).__name__, time.monotonic() - started))
            return None
        self.answers.append((label, answer.status_code, time.monotonic() - started))
        return answer

    def writes(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            title = f"load {n}"
            answer = self._timed("api POST", lambda: self.api.post("/tasks", json={"title": title}))  # noqa: B023
            if answer is not None and answer.status_code == 201:
                self.acknowledged.append(answer.json()["id"])

    def pages(self) -> None:
        while not self.stop.is_set():
            self._timed("web GET", lambda: self.web.get(f"{self.web_url}/tasks"))


def _pid_of(stack: RunningStack, module: str) -> int | None:
    for pid in stack.children():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-m" in argv and argv[argv.index(b"-m") + 1].decode() == module:
            return pid
    return None


def _back(stack: RunningStack, module: str, before: int, health: str, verify: ssl.SSLContext) -> None:
    deadline = time.monotonic() + RECOVERY_SECONDS
    with httpx.Client(verify=verify, timeout=2) as http:
        while time.monotonic() < deadline:
            pid = _pid_of(stack, module)
            try:
                if pid not in (None, before) and http.get(health).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)  # polling a process that is starting, not waiting out a clock
    raise AssertionError(f"{module} did not come back within {RECOVERY_SECONDS} s")


def test_each_tier_killed_under_load_means_503s_while_down_then_full_recovery_and_no_lost_write(
    restarting_stack: RunningStack,
) -> None:
    stack = restarting_stack
    verify = ssl.create_default_context(cafile=stack.info["ca_bundle"])
    token = device_code_token(stack.info, "alice@contoso.test", list(stack.info["api_scopes"]))
    alice = Person()
    sign_in(alice, stack, "alice@contoso.test")
    health = {
        "downstream-api": f"{stack.info['downstream_api']}/healthz",
        "api": f"{stack.info['api']}/healthz",
        "web": f"{stack.web}/healthz",
        "identity-emulator": f"{stack.info['emulator']}/healthz",
    }
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=stack.info["api"], verify=verify, timeout=HANG_SECONDS + 3, headers=bearer) as api:
        load = Load(api, alice, stack.web)
        workers = [threading.Thread(target=load.writes), threading.Thread(target=load.pages)]
        for worker in workers:
            worker.start()
        try:
            for name, module in TIERS.items():
                pid = _pid_of(stack, module)
                assert pid is not None, f"{name} is not running"
                os.killpg(pid, signal.SIGKILL)
                _back(stack, module, pid, health[name], verify)
                # Everything works again, nothing else restarted: a page and a write, first time.
                assert alice.get(f"{stack.web}/tasks").status_code == 200, f"after {name}"
                assert api.post("/tasks", json={"title": f"after {name}"}).status_code == 201, f"after {name}"
        finally:
            load.stop.set()
            for worker in workers:
                worker.join(HANG_SECONDS * 2)

        answered = [(label, status) for label, status, _ in load.answers if isinstance(status, int)]
        unexpected = {(label, status) for label, status in answered if status not in (200, 201, 503)}
        assert not unexpected, f"answers other than 200, 201 and 503: {unexpected}"
        assert ("api POST", 503) in answered and ("web GET", 503) in answered  # the outages were met
        slow = [(label, round(took, 1)) for label, _, took in load.answers if took > HANG_SECONDS]
        assert not slow, f"requests that hung: {slow}"
        assert len(load.acknowledged) > 10
        for task_id in load.acknowledged:
            assert api.get(f"/tasks/{task_id}").status_code == 200, f"acknowledged task {task_id} is lost"
