"""A guest in Chromium: gwen@fabrikam.test, invited into contoso (acct 1), meets the guest policy.

She signs in and keeps her own tasks; the nav offers no Organization link; /organization, typed in,
answers 403 with what a guest can and cannot do; a share with one of the organization's groups, posted
anyway, is refused by the api and explained the same way (docs/guidance/zero-trust-token-customization.md).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.authz.chain import EVERYONE_AT_CONTOSO
from tests.support.launch import RunningStack
from tests.support.people import ARTIFACTS, add_task, chromium, nav, signed_in

pytestmark = pytest.mark.guidance("zero-trust-token-customization")

TASK = "Read the onboarding notes (guest)"


def test_gwen_sees_no_org_link_and_is_told_the_guest_policy_where_she_meets_it(stack: RunningStack) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        gwen = signed_in(browser, stack, "gwen@fabrikam.test", "guest-01-gwen")
        page = gwen.page
        menu = page.get_by_role("navigation", name="Main")
        expect(menu.get_by_role("link", name="Tasks", exact=True)).to_be_visible()
        expect(menu.get_by_role("link", name="Organization", exact=True)).to_have_count(0)

        # Her own tasks work, as for anyone.
        task = add_task(gwen, TASK, "guest-02-gwen-consent-to-write")

        # The organization's tasks, typed in: the policy, not "needs admin approval".
        answer = page.goto(f"{stack.web}/organization")
        assert answer is not None and answer.status == 403
        expect(page.get_by_role("heading", name="Guests can't see the organization's tasks")).to_be_visible()
        policy = page.get_by_role("region", name="What a guest can do here")
        expect(policy).to_contain_text("As a guest you can")
        expect(policy).to_contain_text("keep your own tasks")
        expect(policy).to_contain_text("see the organization's tasks")
        expect(page.get_by_role("main")).not_to_contain_text("Needs admin approval")
        gwen.shot("guest-03-organization-refused")

        # Her task's share page says the policy; a share with a contoso group, posted anyway, is refused.
        nav(page, "Tasks")
        task.get_by_role("link", name="Share…").click()
        expect(page.get_by_role("region", name="What a guest can do here")).to_contain_text(
            "share a task with the organization's groups"
        )
        gwen.shot("guest-04-share-page")
        token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
        assert token and re.fullmatch(r"[A-Za-z0-9_-]+", token)
        refused = page.request.post(
            page.url, form={"csrf_token": token, "group_id": EVERYONE_AT_CONTOSO}, max_redirects=0
        )
        assert refused.status == 403
        assert "Guests can&#39;t share with the organization&#39;s groups" in refused.text()
        assert "As a guest you cannot" in refused.text()

        nav(page, "Tasks")
        expect(task).not_to_contain_text("shared with group")
        assert not gwen.csp_errors and not gwen.page_errors
        gwen.assert_nothing_leaked()
        gwen.close()
