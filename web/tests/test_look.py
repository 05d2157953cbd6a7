"""What a person reads: times for people, the tour's code spans, the current page in the nav, a one-time
confirmation after each action (fixed texts only), and the favicon."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from web.display import code_spans, when
from web.tour import load_tour

# What the old pages showed: an ISO time with its microseconds (2026-12-02T17:45:12.123456).
RAW_TIME = re.compile(r"\d{2}:\d{2}:\d{2}\.\d{3,6}")
GROUP = "5e2a7c10-9d1b-4f3e-8a6c-2b7d9e0f1a23"


@pytest.mark.parametrize(
    ("value", "datetime", "shown"),
    [
        ("2026-12-02T17:45:12.123456", "2026-12-02T17:45:12Z", "2 Dec 2026, 17:45 UTC"),  # SQLite: no zone
        ("2026-12-02T17:45:12.5Z", "2026-12-02T17:45:12Z", "2 Dec 2026, 17:45 UTC"),
        ("2026-12-02T18:45:12+01:00", "2026-12-02T17:45:12Z", "2 Dec 2026, 17:45 UTC"),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "1 Jan 2026, 00:00 UTC"),
        (dt.datetime(2026, 7, 9, 8, 5, tzinfo=dt.UTC), "2026-07-09T08:05:00Z", "9 Jul 2026, 08:05 UTC"),
        (1_800_000_000, "2027-01-15T08:00:00Z", "15 Jan 2027, 08:00 UTC"),
    ],
)
def test_times_are_shown_for_people_with_the_machine_value_beside(value: Any, datetime: str, shown: str) -> None:
    assert str(when(value)) == f'<time datetime="{datetime}">{shown}</time>'


@pytest.mark.parametrize(("value", "shown"), [("<b>soon</b>", "&lt;b&gt;soon&lt;/b&gt;"), (None, ""), (True, "True")])
def test_a_value_that_is_not_a_time_is_shown_escaped_as_it_came(value: Any, shown: str) -> None:
    assert str(when(value)) == shown


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("run `make report` then `zt check`", "run <code>make report</code> then <code>zt check</code>"),
        ("`<script>alert(1)</script>`", "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>"),
        ("<img src=x onerror=alert(1)> `a&b`", "&lt;img src=x onerror=alert(1)&gt; <code>a&amp;b</code>"),
        ('say "`x`"', "say &#34;<code>x</code>&#34;"),
        ("one ` backtick", "one ` backtick"),
        ("``", "``"),
        ("", ""),
    ],
)
def test_backticks_become_code_and_everything_else_stays_text(text: str, html: str) -> None:
    assert str(code_spans(text)) == html


def test_the_tour_shows_its_code_spans_as_code_never_as_backticks(browser: Any) -> None:
    assert any("`" in a.shows for a in load_tour().articles), "the tour has code spans to show"
    html = browser.get("/").text
    articles = html.split('id="articles"', 1)[1]
    assert "`" not in articles
    assert "<code>make permissions-report</code>" in articles


def test_a_task_says_when_it_was_added_for_people(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "Plan", "done": False, "created_at": "2026-12-02T17:45:12.654321"}
    browser.sign_in("alice")
    html = browser.get("/tasks").text
    assert 'added <time datetime="2026-12-02T17:45:12Z">2 Dec 2026, 17:45 UTC</time>' in html
    assert not RAW_TIME.search(html)


def test_the_permissions_page_says_until_when_a_token_holds_as_a_time(browser: Any) -> None:
    browser.sign_in("alice")
    html = browser.get("/permissions").text
    assert re.search(
        r'until <time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC</time>', html
    )
    assert not RAW_TIME.search(html)


@pytest.mark.parametrize(
    ("path", "current", "section"),
    [("/", "/", None), ("/tasks", "/tasks", None), ("/shared", "/shared", None), ("/tasks/t1/share", None, "/tasks")],
)
def test_the_nav_marks_the_current_page(
    browser: Any, fake_api: Any, path: str, current: str | None, section: str | None
) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "Plan", "done": False}
    browser.sign_in("alice")
    nav = browser.get(path).text.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    assert re.findall(r'href="([^"]+)" aria-current="page"', nav) == ([current] if current else [])
    assert re.findall(r'href="([^"]+)" aria-current="true"', nav) == ([section] if section else [])


def _notice(html: str) -> str | None:
    found = re.search(r'<p class="notice" role="status">([^<]*)</p>', html)
    return found.group(1) if found else None


def test_each_task_action_is_confirmed_once_on_the_next_page(browser: Any, fake_api: Any) -> None:
    fake_api.groups = [GROUP]
    browser.sign_in("alice")
    assert _notice(browser.get("/tasks").text) is None
    csrf = browser.csrf("/tasks")

    def act(path: str, **form: str) -> str | None:
        r = browser.post(path, data={"csrf_token": csrf, **form})
        assert r.status_code == 303 and r.headers["location"] == "/tasks", r.text
        cookie = browser.cookie_attributes(r, "__Host-notice")
        assert {"httponly", "secure", "samesite", "path"} <= cookie.keys() and cookie["path"] == "/"
        shown = _notice(browser.get("/tasks").text)
        assert _notice(browser.get("/tasks").text) is None  # once only
        return shown

    assert act("/tasks", title="Plan the offsite") == "Task added."
    task_id = next(iter(fake_api.tasks))
    assert act(f"/tasks/{task_id}/complete") == "Task completed."
    assert act(f"/tasks/{task_id}/share", group_id=GROUP) == "Task shared with the group."
    assert act(f"/tasks/{task_id}/share", group_id="") == "Task no longer shared."
    assert act(f"/tasks/{task_id}/delete") == "Task deleted."
    assert act("/tasks/delete-all") == "All your tasks were deleted."


def test_sign_out_is_confirmed_on_the_page_the_browser_comes_back_to(browser: Any) -> None:
    browser.sign_in("alice")
    r = browser.post("/auth/logout", data={"csrf_token": browser.csrf("/tasks")})
    assert r.status_code == 302 and "post_logout_redirect_uri" in r.headers["location"]
    assert browser.cookie_attributes(r, "__Host-notice")["samesite"].lower() == "lax"  # back cross-site
    assert _notice(browser.get("/").text) == "You are signed out."
    assert _notice(browser.get("/").text) is None


@pytest.mark.parametrize("planted", ["<script>alert(1)</script>", "Your account is locked", "NOTICES", ""])
def test_a_planted_notice_shows_nothing_of_its_own(browser: Any, planted: str) -> None:
    html = browser.http.get("/", headers={"Cookie": f"__Host-notice={planted}"}).text
    assert _notice(html) is None and 'role="status"' not in html


def test_the_favicon_is_an_svg_linked_from_every_page_and_at_favicon_ico(browser: Any) -> None:
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in browser.get("/").text
    for path in ("/static/favicon.svg", "/favicon.ico"):
        r = browser.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].split(";")[0] == "image/svg+xml", path
        assert r.text.startswith("<svg") and "<script" not in r.text
