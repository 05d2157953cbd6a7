"""Look and feel in a real browser (Debian's Chromium through Playwright), measured rather than eyed.

At 1366 px the header is one line; at 390 px and 1366 px no page scrolls sideways (wide tables scroll in their own
box); the nav marks the current page; each action (add, complete, share, delete, sign out) is confirmed
on the next page in a status region; times are for people (no microseconds) and carry <time datetime>;
the tour's backticks are code; the favicon is an SVG. No console error on any page.
Screenshots in test-artifacts/browser/look-*.png.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, ViewportSize, expect

from tests.authz.chain import EVERYONE_AT_CONTOSO
from tests.support.launch import RunningStack
from tests.support.people import ARTIFACTS, Visitor, accept_if_asked, chromium, confirm_its_you, nav, signed_in

pytestmark = pytest.mark.guidance("identity-zero-trust-compliance")

TASK, ANOTHER = "Book the venue (look)", "Measure the page (look)"
PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1366, "height": 768}
# Every page a signed-in person reaches from the nav, the two the footer links, and chapters of the guide (a
# wide table, code quoted from the source). web/tests/test_guide.py checks each names the articles it shows.
PAGES = (
    "/",
    "/guide",
    "/guide/developer-strategy-authorization-best-practices",
    "/guide/api-calls-api",
    "/guide/workshop",
    "/guide/workshop/06-the-chain",
    "/tasks",
    "/shared",
    "/chain",
    "/traces",
    "/permissions",
    "/organization",
    "/admin",
    "/lab",
    "/terms",
    "/privacy",
)
MICROSECONDS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d{3,6}")

HEADER = """() => {
  const header = document.querySelector('header.top');
  const style = getComputedStyle(header);
  const inner = header.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  const tallest = Math.max(...[...header.children].map(e => e.getBoundingClientRect().height));
  const tops = new Set([...header.querySelectorAll('nav a')].map(a => Math.round(a.getBoundingClientRect().top)));
  const who = header.querySelector('.who > span');
  return {inner, tallest, navRows: tops.size, whoLines: who.getClientRects().length,
          buttonHeight: header.querySelector('.who button').getBoundingClientRect().height};
}"""


@pytest.fixture(scope="module", autouse=True)
def _fresh_screenshots() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("look-*.png"):
        old.unlink()


def _console_errors(visitor: Visitor) -> list[str]:
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        # A page that answers with its own error status (403 "needs admin approval") is logged as a failed
        # load of the document itself: that is the page working. A sub-resource failing (a favicon's 404) counts.
        document = message.text.startswith("Failed to load resource") and message.location["url"] == visitor.page.url
        if message.type == "error" and not document:
            errors.append(f"{visitor.page.url}: {message.text}")

    visitor.page.on("console", keep)
    return errors


# The page's width, and what sticks out past the viewport (to say which element when it fails).
WIDE = """() => ({width: document.documentElement.scrollWidth, past: [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > innerWidth + 0.5)
  .slice(0, 5).map(e => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)})"""


def _fits(page: Page, width: int) -> None:
    wide: dict[str, Any] = page.evaluate(WIDE)
    assert wide["width"] <= width, (page.url, wide)


def _notice(page: Page, text: str) -> None:
    expect(page.get_by_role("status")).to_have_text(text)


def test_the_header_is_one_line_at_1366_and_the_current_page_is_marked(stack: RunningStack) -> None:
    with chromium() as browser:
        alice = signed_in(browser, stack, "alice@contoso.test", "look-01-alice")
        errors = _console_errors(alice)
        page = alice.page
        page.set_viewport_size(LAPTOP)
        for path, name in (("/", "Tour"), ("/tasks", "Tasks"), ("/chain", "Identity through the chain")):
            page.goto(f"{stack.web}{path}")
            header: dict[str, Any] = page.evaluate(HEADER)
            # All of the header's parts side by side: its content is as tall as its tallest part, one button.
            assert header["inner"] <= header["tallest"] + 1, (path, header)
            assert header["tallest"] <= header["buttonHeight"] + 1, (path, header)
            assert header["navRows"] == 1 and header["whoLines"] == 1, (path, header)
            current = page.get_by_role("navigation", name="Main").locator('a[aria-current="page"]')
            expect(current).to_have_count(1)
            expect(current).to_have_text(name)
            # Seen, not only announced: the current link is drawn differently from the others.
            other = page.get_by_role("navigation", name="Main").locator("a:not([aria-current])").first
            assert current.evaluate("a => getComputedStyle(a).borderBottomColor") != other.evaluate(
                "a => getComputedStyle(a).borderBottomColor"
            )
        alice.shot("look-02-header-at-1366")
        assert not errors, errors
        alice.assert_nothing_leaked()
        alice.close()


def test_each_action_is_confirmed_and_times_are_for_people(stack: RunningStack) -> None:
    with chromium() as browser:
        alice = signed_in(browser, stack, "alice@contoso.test", "look-03-alice")
        errors = _console_errors(alice)
        page = alice.page
        nav(page, "Tasks")
        page.get_by_label("New task").fill(TASK)
        page.get_by_role("button", name="Add").click()
        task = page.locator("ul.tasks li").filter(has_text=TASK)
        accept_if_asked(alice, task, "look-04-alice-consent-to-write")
        _notice(page, "Task added.")
        alice.shot("look-05-task-added")
        added = task.locator("time")
        expect(added).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"))
        expect(added).to_have_text(re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC$"))
        assert not MICROSECONDS.search(page.content())
        page.reload()
        expect(page.get_by_role("status")).to_have_count(0)  # said once

        task.get_by_role("button", name="Complete").click()
        _notice(page, "Task completed.")

        task.get_by_role("link", name="Share…").click()
        page.get_by_label("Group").select_option(EVERYONE_AT_CONTOSO)
        page.get_by_role("button", name="Share", exact=True).click()
        confirm_its_you(alice, "look-06-alice-confirms-its-her")  # sharing is sensitive: a second factor
        expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
        _notice(page, "Task shared with the group.")
        # The group's id whole on one line, never broken at a hyphen.
        group = task.locator("code.id")
        expect(group).to_have_text(EVERYONE_AT_CONTOSO)
        assert group.evaluate("e => e.getClientRects().length") == 1

        task.get_by_role("button", name="Delete").click()
        _notice(page, "Task deleted.")
        expect(task).to_have_count(0)
        alice.shot("look-07-task-deleted")

        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(f"{stack.web}/")
        _notice(page, "You are signed out.")
        alice.shot("look-08-signed-out")
        assert not errors, errors
        alice.assert_nothing_leaked()
        alice.close()


def test_no_page_scrolls_sideways_at_390_or_1366_px(stack: RunningStack) -> None:
    with chromium() as browser:
        alice = signed_in(browser, stack, "alice@contoso.test", "look-09-alice")
        errors = _console_errors(alice)
        page = alice.page
        page.set_viewport_size(PHONE)
        nav(page, "Tasks")
        page.get_by_label("New task").fill(ANOTHER)
        page.get_by_role("button", name="Add").click()
        task = page.locator("ul.tasks li").filter(has_text=ANOTHER)
        accept_if_asked(alice, task, "look-10-alice-consent-to-write")
        share = task.get_by_role("link", name="Share…").get_attribute("href")
        page.goto(f"{stack.web}/chain")
        # The chain request's own trace: the waterfall, all three tiers and the database.
        trace = page.get_by_role("link", name="See this request's trace").get_attribute("href")
        for path in (*PAGES, share, trace):
            page.goto(f"{stack.web}{path}")
            assert page.url.startswith(stack.web), page.url
            _fits(page, PHONE["width"])
            alice.shot(f"look-11-390{(path or '').replace('/', '-')}")
        page.set_viewport_size(LAPTOP)
        for path in (*PAGES, share, trace):
            page.goto(f"{stack.web}{path}")
            _fits(page, LAPTOP["width"])
        alice.shot("look-11-1366-last")
        page.set_viewport_size(PHONE)
        page.goto(f"{stack.web}/")
        # The tour's code spans are code, not backticks.
        articles = page.locator("#articles").locator("xpath=..")
        assert "`" not in articles.inner_text()
        expect(articles.locator("td code", has_text="make permissions-report")).to_have_count(1)
        alice.assert_nothing_leaked()
        alice.close()

        bob = signed_in(browser, stack, "bob@contoso.test", "look-12-bob")  # holds Tasks.Admin: the real table
        errors += _console_errors(bob)
        bob.page.set_viewport_size(PHONE)
        bob.page.goto(f"{stack.web}/admin")
        _fits(bob.page, PHONE["width"])  # "Confirm it's you" first
        confirm_its_you(bob, "look-12b-bob-confirms-its-him")  # the summary is a sensitive action
        expect(bob.page.get_by_role("heading", name="Admin: tasks per person")).to_be_visible()
        _fits(bob.page, PHONE["width"])
        bob.shot("look-13-390-admin")
        bob.close()
        assert not errors, errors


def test_the_favicon_is_an_svg(stack: RunningStack) -> None:
    with chromium() as browser:
        visitor = Visitor(browser, stack, "nobody")
        visitor.open_web_app()
        icon = visitor.page.locator('link[rel="icon"]')
        expect(icon).to_have_attribute("type", "image/svg+xml")
        for path in (icon.get_attribute("href"), "/favicon.ico"):
            answer = visitor.context.request.get(f"{stack.web}{path}")
            assert answer.status == 200, path
            assert answer.headers["content-type"].split(";")[0] == "image/svg+xml", path
            assert answer.text().startswith("<svg"), path
        visitor.close()
