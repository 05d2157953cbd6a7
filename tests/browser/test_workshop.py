"""The workshop, walked in Chromium: every module of docs/workshop/ in order, on a fresh stack of its own.

Each module ends with what a person will see, as lines a test can read (tests/support/workshop.py): `observe`
opens a page as a demo user (signing in, consenting and confirming a second factor when asked, as the module
tells the person to) and expects the text the module promises; `do` is one of the module's steps (add a task,
grant consent on the emulator's admin view, revoke a session, `make reset`). A module that promises something
the app does not show fails here. Screenshots in test-artifacts/browser/workshop-*.png.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Error, Page, expect

from tests.support.doc_commands import terminal_env
from tests.support.launch import MAKE_RUN_STACK_OFFSET, RunningStack, start_stack
from tests.support.people import ARTIFACTS, Visitor, chromium, confirm_its_you
from tests.support.workshop import Step, modules, steps

pytestmark = pytest.mark.guidance("identity-zero-trust-compliance")

ANYONE = "anyone"
# Long enough for a sign-in through the emulator and back; a promise not kept fails after this.
SECONDS = 20


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack for this walk alone: the walk grants consent, disables users and resets (the make run test's
    offset block: its stack is gone when it ends, as this one's is)."""
    running = start_stack(tmp_path_factory.mktemp("workshop-stack"), MAKE_RUN_STACK_OFFSET)
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(30)


@pytest.fixture(scope="module", autouse=True)
def _fresh_screenshots() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("workshop-*.png"):
        old.unlink()


def _text(page: Page) -> str:
    try:
        return page.locator("body").inner_text(timeout=1000)
    except Error:  # between two documents
        return ""


def _visible(page: Page, locator_of: Callable[[Page], object]) -> bool:
    try:
        return bool(locator_of(page).is_visible())  # type: ignore[attr-defined]
    except Error:
        return False


class Walk:
    """The people of the workshop, each with a browser context kept from module to module."""

    def __init__(self, browser: Browser, stack: RunningStack) -> None:
        self.browser, self.stack = browser, stack
        self.people: dict[str, Visitor] = {}
        self.shots = 0

    def person(self, user: str) -> Visitor:
        if user == ANYONE:
            return Visitor(self.browser, self.stack, ANYONE)
        if user not in self.people:
            self.people[user] = Visitor(self.browser, self.stack, user)
        return self.people[user]

    def url(self, path: str) -> str:
        if path.startswith("emulator:"):
            return str(self.stack.info["emulator_front_channel"]) + path.removeprefix("emulator:")
        return self.stack.web + path

    def shot(self, visitor: Visitor, step: Step) -> None:
        self.shots += 1
        visitor.page.screenshot(path=ARTIFACTS / f"workshop-{self.shots:02d}-{step.module}.png", full_page=True)

    def until(self, visitor: Visitor, text: str, step: Step) -> None:
        """What a person does until `text` shows: sign in, accept consent, confirm a second factor."""
        page, deadline = visitor.page, time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            if text in _text(page):
                return
            if visitor.user != ANYONE and _visible(page, lambda p: p.get_by_label("Password")):
                page.get_by_label("Email or username").fill(visitor.user)
                page.get_by_label("Password").fill(self.stack.info["demo_password"])
                page.get_by_role("button", name="Sign in").click()
            elif _visible(page, lambda p: p.get_by_role("button", name="Accept")):
                page.get_by_role("button", name="Accept").click()
            elif _visible(page, lambda p: p.get_by_role("heading", name="Confirm it's you")):
                confirm_its_you(visitor, f"workshop-{step.module}")
            page.wait_for_timeout(200)  # the page moving on (form_post, redirects), not a clock
        self.shot(visitor, step)
        raise AssertionError(f"{step}: not on the page ({page.url}):\n{_text(page)[:1500]}")

    def observe(self, step: Step) -> None:
        visitor = self.person(step.user)
        if step.path != ".":
            visitor.page.goto(self.url(step.path))
        if step.click:
            self.until(visitor, step.click, step)
            visitor.page.get_by_role("button", name=step.click).first.click()
        self.until(visitor, step.text, step)
        self.shot(visitor, step)
        if step.user == ANYONE:
            visitor.close()

    def do(self, step: Step) -> None:
        action = ACTIONS.get(step.action)
        assert action, f"{step}: no such action (known: {', '.join(sorted(ACTIONS))})"
        action(self, step)

    # -- the modules' steps -----------------------------------------------------------------------

    def add_task(self, step: Step) -> None:
        visitor = self.person(step.user)
        visitor.page.goto(self.url("/tasks"))
        self.until(visitor, "Your tasks", step)
        visitor.page.get_by_label("New task").fill(step.argument)
        visitor.page.get_by_role("button", name="Add").click()
        self.until(visitor, step.argument, step)
        expect(visitor.page.locator("ul.tasks li").filter(has_text=step.argument)).to_have_count(1)

    def share_task(self, step: Step) -> None:
        visitor = self.person(step.user)
        page = visitor.page
        task, _, group = step.argument.partition(" > ")  # `Team lunch > Everyone at Contoso`: the group by name
        page.goto(self.url("/tasks"))
        self.until(visitor, task, step)
        page.locator("ul.tasks li").filter(has_text=task).get_by_role("link", name="Share…").click()
        choice = page.get_by_label("Group")
        if group:
            choice.select_option(label=group)
        else:
            choice.select_option(index=0)
        page.get_by_role("button", name="Share", exact=True).click()
        self.until(visitor, "Your tasks", step)  # through "Confirm it's you" and the second factor

    def sign_out(self, step: Step) -> None:
        visitor = self.person(step.user)
        visitor.page.get_by_role("banner").get_by_role("button", name="Sign out").click()

    def admin_view(self, step: Step, button: str, done: str) -> None:
        """On the emulator's admin view as `step.user`: click `button` in the row of user `step.argument`."""
        visitor = self.person(step.user)
        visitor.page.goto(self.url("emulator:/admin"))
        self.until(visitor, "Tenant administration", step)
        visitor.page.locator("tr").filter(has_text=step.argument).get_by_role("button", name=button).click()
        self.until(visitor, done, step)

    def grant_consent(self, step: Step) -> None:
        client, resource = step.argument.split()
        visitor = self.person(step.user)
        page = visitor.page
        page.goto(self.url("emulator:/admin"))
        self.until(visitor, "Tenant administration", step)
        page.get_by_label("Tenant").select_option("contoso")
        page.get_by_label("Client app").select_option(client)
        page.get_by_label("Resource").select_option(resource)
        page.get_by_role("button", name="Grant tenant-wide admin consent").click()
        self.until(visitor, f"admin consent granted for {client} on {resource}", step)

    def reset(self, step: Step) -> None:
        """`make reset`, as the module says (zt reset, against this walk's stack)."""
        done = subprocess.run(
            [sys.executable, "-m", "devtools.cli", "reset"],
            env={**terminal_env(os.environ), "ZT_LOCAL_DIR": str(self.stack.local_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
        assert "demo state is back to its start" in done.stdout, done.stdout


ACTIONS: dict[str, Callable[[Walk, Step], None]] = {
    "add-task": Walk.add_task,
    "share-task": Walk.share_task,
    "sign-out": Walk.sign_out,
    "grant-consent": Walk.grant_consent,
    "revoke-sessions": lambda walk, step: walk.admin_view(step, "Revoke sessions", "sessions revoked"),
    "disable": lambda walk, step: walk.admin_view(step, "Disable", "disabled"),
    "reset": Walk.reset,
}


@pytest.mark.live
def test_a_person_following_the_modules_in_order_sees_what_each_promises(fresh_stack: RunningStack) -> None:
    found = modules()
    assert len(found) >= 8, found
    started = time.monotonic()
    with chromium() as browser:
        walk = Walk(browser, fresh_stack)
        checked: dict[str, int] = {}
        for module in found:
            module_steps = steps(module)
            assert any(s.kind == "observe" for s in module_steps), f"{module.name} promises nothing a test can check"
            for step in module_steps:
                walk.observe(step) if step.kind == "observe" else walk.do(step)
            checked[module.stem] = sum(1 for s in module_steps if s.kind == "observe")
        for visitor in walk.people.values():
            assert not visitor.page_errors, visitor.page_errors
            visitor.assert_nothing_leaked()
            visitor.close()
    assert set(checked) == {p.stem for p in found}, checked
    print(f"workshop walked in {time.monotonic() - started:.0f} s: {checked}")


def test_the_steps_parse_and_every_action_is_known() -> None:
    for module in modules():
        for step in steps(module):
            if step.kind == "do":
                assert step.action in ACTIONS, step
            else:
                assert step.path == "." or step.path.startswith(("/", "emulator:/")), step
