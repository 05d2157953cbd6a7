"""Continuous access evaluation in a real browser (Debian's Chromium through Playwright).

alice signs in and works; an administrator revokes her sessions (as revokeSignInSessions does in Entra);
her tokens are still valid for an hour, but her next page goes through Graph's claims challenge and a
fresh sign-in and then shows; revoked again, her next change goes the same way and is done exactly once.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.authz.chain import EVERYONE_AT_CONTOSO
from tests.support.launch import RunningStack
from tests.support.people import ARTIFACTS, Visitor, accept_if_asked, chromium, confirm_its_you, nav, signed_in

pytestmark = pytest.mark.guidance("secure-with-cae")

ALICE = "alice@contoso.test"


@pytest.fixture(scope="module", autouse=True)
def _fresh_screenshots() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("cae-*.png"):
        old.unlink()


def _revoke_sessions(stack: RunningStack) -> None:
    answer = stack.administrator.request("POST", "/admin/users/revoke-sessions", data={"upn": ALICE})
    assert answer.is_success, answer.text


def _sign_in_again(alice: Visitor, step: str) -> None:
    """At the emulator's sign-in page (her session there ended with the revocation), then back."""
    page = alice.page
    expect(page).to_have_url(re.compile("^" + re.escape(alice.stack.info["emulator_front_channel"])))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    alice.shot(step)
    page.get_by_label("Email or username").fill(ALICE)
    page.get_by_label("Password").fill(alice.stack.info["demo_password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("banner").get_by_text("Signed in as")).to_be_visible()
    assert page.url.startswith(alice.stack.web), page.url


def test_after_her_sessions_are_revoked_alices_next_action_signs_her_in_again_and_succeeds_once(
    stack: RunningStack,
) -> None:
    with chromium() as browser:
        alice = signed_in(browser, stack, ALICE, "cae-01-alice")
        page = alice.page
        nav(page, "Tasks")
        page.get_by_label("New task").fill("Before the revocation")
        page.get_by_role("button", name="Add").click()
        tasks = page.locator("ul.tasks li")
        accept_if_asked(alice, tasks.filter(has_text="Before the revocation"), "cae-02-consent-to-write")
        alice.shot("cae-03-working")

        _revoke_sessions(stack)
        # A page: Graph refuses her (still valid) token with a claims challenge; she signs in again.
        nav(page, "Shared with me")
        _sign_in_again(alice, "cae-04-page-asks-to-sign-in-again")
        expect(page.get_by_role("heading", name="Shared with your groups")).to_be_visible()
        alice.shot("cae-05-page-back")

        _revoke_sessions(stack)
        # A change: it waits while she signs in again, then is done, once.
        nav(page, "Tasks")
        _sign_in_again(alice, "cae-06-tasks-asks-to-sign-in-again")
        page.get_by_label("New task").fill("After the revocation")
        _revoke_sessions(stack)
        page.get_by_role("button", name="Add").click()
        _sign_in_again(alice, "cae-07-change-asks-to-sign-in-again")
        expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
        expect(tasks.filter(has_text="After the revocation")).to_have_count(1)
        expect(tasks.filter(has_text="Before the revocation")).to_have_count(1)
        alice.shot("cae-08-change-done-once")

        alice.assert_nothing_leaked()
        alice.close()


@pytest.mark.parametrize("action", ["share", "delete-all", "admin-summary"])
def test_each_sensitive_action_asks_to_confirm_its_you_then_is_done(stack: RunningStack, action: str) -> None:
    user = "bob@contoso.test" if action == "admin-summary" else ALICE
    with chromium() as browser:
        visitor = signed_in(browser, stack, user, f"cae-stepup-{action}-01")
        page = visitor.page
        tasks = page.locator("ul.tasks li")
        if action == "admin-summary":
            nav(page, "Admin")
            confirm_its_you(visitor, f"cae-stepup-{action}-02")
            expect(page.get_by_role("heading", name="Admin: tasks per person")).to_be_visible()
        else:
            title = f"Step-up {action}"
            nav(page, "Tasks")
            page.get_by_label("New task").fill(title)
            page.get_by_role("button", name="Add").click()
            accept_if_asked(visitor, tasks.filter(has_text=title), f"cae-stepup-{action}-02-consent")
            if action == "share":
                tasks.filter(has_text=title).get_by_role("link", name="Share…").click()
                page.get_by_label("Group").select_option(EVERYONE_AT_CONTOSO)
                page.get_by_role("button", name="Share", exact=True).click()
                confirm_its_you(visitor, f"cae-stepup-{action}-03")
                # The group by its name (Graph), its id a click away.
                expect(tasks.filter(has_text=title)).to_contain_text("shared with group Everyone at Contoso")
                expect(tasks.filter(has_text=title)).to_contain_text(EVERYONE_AT_CONTOSO)
            else:
                page.get_by_role("button", name="Delete all my tasks").click()
                confirm_its_you(visitor, f"cae-stepup-{action}-03")
                expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
                expect(tasks).to_have_count(0)
        visitor.shot(f"cae-stepup-{action}-04-done")
        visitor.assert_nothing_leaked()
        visitor.close()
