"""A real account switch, in Chromium: carol is refused, then signs in as alice without clearing cookies.

In the default single-tenant mode carol (fabrikam) is refused at the identity provider (AADSTS50020); its
session is hers, so every later "Sign in" in this browser meets the same refusal. The refusal page's
"Sign in with another account" opens the account picker (prompt=select_account, as Entra's); "Use another
account" asks for a sign-in, and the web app's own sign-in ends as alice, on the page she asked for.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.launch import RunningStack
from tests.support.people import ARTIFACTS, Visitor, chromium

pytestmark = [pytest.mark.guidance("user-authentication")]


def test_carol_is_refused_then_switches_to_alice_and_lands_on_her_tasks(stack: RunningStack) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        visitor = Visitor(browser, stack, "carol@fabrikam.test")
        page = visitor.page
        page.goto(f"{stack.web}/tasks")  # not signed in: to the identity provider, to come back to /tasks
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Email or username").fill("carol@fabrikam.test")
        page.get_by_label("Password").fill(stack.info["demo_password"])
        page.get_by_role("button", name="Sign in").click()
        refused = page.get_by_role("heading", name="We couldn't sign you in")
        expect(refused).to_be_visible()
        expect(page.get_by_role("main")).to_contain_text("AADSTS50020")
        visitor.shot("switch-01-carol-refused")

        # The trap: signing in again goes straight back to her refusal, without asking anything.
        page.goto(f"{stack.web}/tasks")
        expect(refused).to_be_visible()
        assert not visitor.has_session()

        page.get_by_role("link", name="Sign in with another account").click()
        expect(page.get_by_role("heading", name="Pick an account")).to_be_visible()
        expect(page.get_by_role("button", name=re.compile("carol@fabrikam.test"))).to_be_visible()
        visitor.shot("switch-02-account-picker")
        page.get_by_role("button", name="Use another account").click()

        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Email or username").fill("alice@contoso.test")
        page.get_by_label("Password").fill(stack.info["demo_password"])
        page.get_by_role("button", name="Sign in").click()
        visitor.user = "alice@contoso.test"
        visitor.finish_sign_in("switch-03-alice")
        expect(page).to_have_url(f"{stack.web}/tasks")
        expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
        visitor.shot("switch-04-alice-tasks")
        assert not visitor.csp_errors and not visitor.page_errors
        visitor.assert_nothing_leaked()
        visitor.close()
