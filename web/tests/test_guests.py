"""A guest (acct 1) on the web app: no Organization link, and the guest policy where she meets a limit.

The api decides (tests/authz/test_guests.py); the web app only explains, from the ID token's acct claim.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.guidance("zero-trust-token-customization")

ORG_LINK = '<a href="/organization"'
EVERYONE = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"


def test_the_nav_offers_the_organization_to_members_only(browser: Any, make_browser: Any) -> None:
    browser.sign_in("gwen")
    page = browser.get("/tasks").text
    assert ORG_LINK not in page and '<a href="/tasks"' in page
    member = make_browser()
    member.sign_in("alice")
    assert ORG_LINK in member.get("/tasks").text


def test_the_organization_page_tells_a_guest_the_policy_without_asking_for_the_org_scope(
    browser: Any, idp: Any, fake_api: Any
) -> None:
    browser.sign_in("gwen")
    asked_before = len(idp.token_requests)
    r = browser.get("/organization")
    assert r.status_code == 403
    assert "Guests can&#39;t see the organization&#39;s tasks" in r.text
    assert "As a guest you can" in r.text and "keep your own tasks" in r.text
    assert "As a guest you cannot" in r.text and "share a task with the organization&#39;s groups" in r.text
    assert "Needs admin approval" not in r.text
    assert ("GET", "/org/tasks") not in [(m, p) for m, p, _, _ in fake_api.calls]
    assert len(idp.token_requests) == asked_before  # no token asked for, for the organization or anything


def test_a_guests_share_page_says_the_policy_and_the_apis_refusal_explains_it(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "gwen's own", "done": False}
    browser.sign_in("gwen")
    page = browser.get("/tasks/t1/share").text
    assert "As a guest you cannot" in page and "You are in no group" not in page
    # A share posted anyway (crafted, or from an old page): the api refuses, she hears why.
    r = browser.post("/tasks/t1/share", data={"group_id": EVERYONE, "csrf_token": browser.csrf("/tasks")})
    assert r.status_code == 403, r.text[:2000]
    assert "Guests can&#39;t share with the organization&#39;s groups" in r.text and "As a guest you can" in r.text
    assert "shared_with_group" not in fake_api.tasks["t1"]


def test_a_members_refused_share_is_not_called_a_guests(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "alice's", "done": False}
    browser.sign_in("alice")
    r = browser.post("/tasks/t1/share", data={"group_id": EVERYONE, "csrf_token": browser.csrf("/tasks")})
    assert r.status_code == 403 and "guest" not in r.text.lower().split("<main", 1)[1]
