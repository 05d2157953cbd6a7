"""Sharing a task with a group, in a real browser (Debian's Chromium through Playwright).

alice shares a task with a group she is in, picked from the groups downstream-api resolves for her;
bob, in that group, finds it under "Shared with me" and cannot change it; when alice stops sharing it
is gone from bob's page. Every response is scanned for tokens as in test_sign_in.py.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.authz.chain import ENGINEERING, EVERYONE_AT_CONTOSO
from tests.support.launch import RunningStack
from tests.support.people import ARTIFACTS, add_task, chromium, confirm_its_you, nav, signed_in

pytestmark = pytest.mark.guidance("configure-tokens-group-claims-app-roles")

TASK = "Team lunch on friday (shared)"


@pytest.fixture(scope="module", autouse=True)
def _fresh_screenshots() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("sharing-*.png"):
        old.unlink()


def test_alice_shares_a_task_with_a_group_bob_sees_it_until_she_stops(stack: RunningStack) -> None:
    with chromium() as browser:
        alice = signed_in(browser, stack, "alice@contoso.test", "sharing-01-alice")
        page = alice.page
        task = add_task(alice, TASK, "sharing-02-alice-consent-to-write")

        task.get_by_role("link", name="Share…").click()
        expect(page.get_by_role("heading", name=f"Share “{TASK}”")).to_be_visible()
        choice = page.get_by_label("Group")
        # The groups offered are alice's, as downstream-api resolves them, by the names it reads from Graph
        # (GroupMember.Read.All, admin-consented); each id is the option's value, and a click away below.
        expect(choice.locator(f'option[value="{EVERYONE_AT_CONTOSO}"]')).to_have_text("Everyone at Contoso")
        expect(choice.locator(f'option[value="{ENGINEERING}"]')).to_have_text("Engineering")
        ids = page.locator("details.group-ids")
        ids.locator("summary").click()
        expect(ids.get_by_role("row", name=f"Engineering {ENGINEERING}")).to_be_visible()
        choice.select_option(label="Everyone at Contoso")
        alice.shot("sharing-03-alice-chooses-a-group")
        page.get_by_role("button", name="Share", exact=True).click()
        # Sharing with a group is a sensitive action: a second factor first (tests/browser/test_cae.py).
        confirm_its_you(alice, "sharing-03b-alice-confirms-its-her")
        expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
        expect(task).to_contain_text("shared with group Everyone at Contoso")
        group = task.locator("details.named-id")
        expect(group.locator("code.id")).not_to_be_visible()
        group.locator("summary").click()  # the id, one click away
        expect(group.locator("code.id")).to_have_text(EVERYONE_AT_CONTOSO)
        alice.shot("sharing-04-alice-task-shared")

        bob = signed_in(browser, stack, "bob@contoso.test", "sharing-05-bob")
        nav(bob.page, "Shared with me")
        expect(bob.page.get_by_role("heading", name="Shared with your groups")).to_be_visible()
        shared = bob.page.locator("ul.tasks li").filter(has_text=TASK)
        expect(shared).to_have_count(1)
        expect(shared).to_contain_text("group Everyone at Contoso")
        expect(shared.locator("code.id")).to_have_text(EVERYONE_AT_CONTOSO)
        expect(shared.get_by_role("button")).to_have_count(0)  # read-only for the group
        bob.shot("sharing-06-bob-sees-it")
        nav(bob.page, "Tasks")
        expect(bob.page.locator("ul.tasks li").filter(has_text=TASK)).to_have_count(0)  # not his

        task.get_by_role("link", name="Share…").click()
        page.get_by_role("button", name="Stop sharing").click()
        expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
        expect(task).not_to_contain_text("shared with group")

        nav(bob.page, "Shared with me")
        expect(bob.page.get_by_role("heading", name="Shared with your groups")).to_be_visible()
        expect(bob.page.locator("ul.tasks li").filter(has_text=TASK)).to_have_count(0)
        bob.shot("sharing-07-bob-no-longer-sees-it")

        for visitor in (alice, bob):
            visitor.assert_nothing_leaked()
            visitor.close()
