"""Sign-in end to end in a real browser: Debian's headless Chromium, driven by Playwright, against
`make run`'s stack.

Alice signs in through the emulator's own pages, adds a task, sees it, reloads, signs out; bob does not
see her task; carol (another tenant) is refused with a clear page. Along the way: every response the
browser got is scanned for tokens, its cookies must be opaque and HttpOnly, and no Content Security
Policy may have blocked anything (the pages carry no inline script or style). A screenshot of each step
lands in test-artifacts/browser/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.launch import RunningStack
from tests.support.people import ARTIFACTS, Visitor, accept_if_asked, chromium

pytestmark = [pytest.mark.guidance("user-authentication")]

TASK = "Water the plants (browser)"


def test_alice_adds_a_task_bob_does_not_see_it_carol_is_refused(stack: RunningStack) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("[0-9][0-9]-*.png"):  # this test's own; other browser tests keep theirs
        old.unlink()
    with chromium() as browser:
        alice = Visitor(browser, stack, "alice@contoso.test")
        alice.open_web_app()
        alice.shot("01-home-signed-out")
        alice.sign_in("02-alice")
        alice.finish_sign_in("03-alice")
        alice.shot("04-alice-signed-in")

        page = alice.page
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
        expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
        page.get_by_label("New task").fill(TASK)
        page.get_by_role("button", name="Add").click()
        task = page.locator("ul.tasks li").filter(has_text=TASK)
        # The first write asks for the write scope (incremental consent) unless alice already gave it.
        accept_if_asked(alice, task, "05a-alice-consent-to-write")
        expect(task).to_have_count(1)
        expect(task.get_by_role("button", name="Complete")).to_be_visible()
        alice.shot("05-alice-task-added")

        page.reload()  # kept downstream, not in the page
        expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
        expect(task).to_have_count(1)
        alice.shot("06-alice-after-reload")

        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        # The web app ends its session, the emulator ends its own and sends the browser back, signed out.
        expect(page).to_have_url(f"{stack.web}/")
        expect(page.get_by_role("banner")).to_contain_text("Not signed in")
        assert not alice.has_session()
        alice.shot("07-alice-signed-out")
        # The scan below covered the page that carried the code back, which submits itself at once.
        assert any('id="form_post"' in text for where, text in alice.received if where.endswith(" body"))
        alice.assert_nothing_leaked()
        alice.close()

        bob = Visitor(browser, stack, "bob@contoso.test")
        bob.open_web_app()
        bob.sign_in("08-bob")
        bob.finish_sign_in("09-bob")
        bob.page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
        expect(bob.page.get_by_role("heading", name="Your tasks")).to_be_visible()
        expect(bob.page.get_by_text(TASK)).to_have_count(0)
        bob.shot("10-bob-tasks")
        bob.assert_nothing_leaked()
        bob.close()

        carol = Visitor(browser, stack, "carol@fabrikam.test")
        carol.open_web_app()
        carol.sign_in("11-carol")
        expect(carol.page.get_by_role("heading", name="We couldn't sign you in")).to_be_visible()
        expect(carol.page.get_by_role("main")).to_contain_text("AADSTS50020")
        expect(carol.page.get_by_role("main")).to_contain_text("carol@fabrikam.test")
        expect(carol.page.locator(".banner")).to_have_css("background-color", "rgb(255, 244, 206)")
        carol.shot("12-carol-refused")
        assert not carol.has_session()  # no session came of it
        carol.assert_nothing_leaked()
        carol.close()
