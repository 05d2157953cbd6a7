"""The /shared page: what the api says is shared with the user's groups, and nothing it decides itself."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.guidance("configure-tokens-group-claims-app-roles")

GROUP = "2a3b4c5d-6e7f-4081-9213-243546576879"


def test_shared_needs_a_sign_in(browser: Any) -> None:
    r = browser.get("/shared")
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Fshared"


def test_shared_lists_what_the_api_answers_with_the_users_token(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "Plan the offsite", "done": False, "shared_with_group": GROUP}
    fake_api.tasks["t2"] = {"id": "t2", "title": "private", "done": False, "shared_with_group": None}
    browser.sign_in("alice")
    r = browser.get("/shared")
    assert r.status_code == 200
    assert "Plan the offsite" in r.text and GROUP in r.text and "private" not in r.text
    method, path, auth, _ = fake_api.calls[-1]
    assert (method, path) == ("GET", "/tasks/shared") and auth and auth.startswith("Bearer ")


def test_an_unexpected_answer_is_a_clear_502(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": None, "done": "maybe", "shared_with_group": GROUP}
    browser.sign_in("alice")
    r = browser.get("/shared")
    assert r.status_code == 502 and "The api answered unexpectedly" in r.text
