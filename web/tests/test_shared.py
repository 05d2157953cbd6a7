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
    asked = [(method, path) for method, path, auth, _ in fake_api.calls if auth and auth.startswith("Bearer ")]
    assert ("GET", "/tasks/shared") in asked


def test_shared_tasks_name_their_group_with_the_id_one_click_away(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "Plan the offsite", "done": False, "shared_with_group": GROUP}
    fake_api.groups, fake_api.group_names = [GROUP], {GROUP: "Engineering"}
    browser.sign_in("alice")
    for path in ("/shared", "/tasks"):
        text = browser.get(path).text
        assert (
            f'<details class="named-id"><summary>Engineering</summary><code class="id" title="group object id">'
            f"{GROUP}</code></details>" in text
        ), path


def test_a_group_without_a_name_shows_its_id_and_the_page_still_works(browser: Any, fake_api: Any) -> None:
    """No name from Graph (no administrator consented to GroupMember.Read.All, or the api answered none):
    the id stands in, and a failing /me/groups does not take the task list down."""
    fake_api.tasks["t1"] = {"id": "t1", "title": "Plan the offsite", "done": False, "shared_with_group": GROUP}
    fake_api.groups = [GROUP]
    browser.sign_in("alice")
    assert f'<code class="id" title="group object id (no name: see the share page)">{GROUP}</code>' in (
        browser.get("/tasks").text
    )


def test_an_unexpected_answer_is_a_clear_502(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": None, "done": "maybe", "shared_with_group": GROUP}
    browser.sign_in("alice")
    r = browser.get("/shared")
    assert r.status_code == 502 and "The api answered unexpectedly" in r.text


# -- sharing one of your tasks (/tasks/{id}/share) -------------------------------------------

OTHER = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f"


def _api_writes(fake_api: Any) -> list[tuple[str, str, Any]]:
    return [(method, path, body) for method, path, _, body in fake_api.calls if method != "GET"]


def test_share_page_needs_a_sign_in(browser: Any) -> None:
    r = browser.get("/tasks/t1/share")
    assert r.status_code == 302 and r.headers["location"].startswith("/auth/login")


def test_share_page_offers_the_groups_the_api_resolves_for_you(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "Plan the offsite", "done": False}
    fake_api.groups = [GROUP, OTHER]
    browser.sign_in("alice")
    r = browser.get("/tasks/t1/share")
    assert r.status_code == 200
    assert "Plan the offsite" in r.text and f'value="{GROUP}"' in r.text and f'value="{OTHER}"' in r.text
    assert "Stop sharing" not in r.text  # not shared yet
    # No names from the api: each option reads as its id.
    assert f'<option value="{GROUP}" title="{GROUP}" >{GROUP}</option>' in r.text
    asked = [(method, path) for method, path, auth, _ in fake_api.calls if auth and auth.startswith("Bearer ")]
    assert ("GET", "/tasks/t1") in asked and ("GET", "/me/groups") in asked


def test_share_page_names_the_groups_sorted_by_name_ids_a_click_away(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "Plan the offsite", "done": False, "shared_with_group": OTHER}
    fake_api.groups, fake_api.group_names = [GROUP, OTHER], {GROUP: "Engineering", OTHER: "Design"}
    browser.sign_in("alice")
    text = browser.get("/tasks/t1/share").text
    design = f'<option value="{OTHER}" title="{OTHER}" selected>Design</option>'
    engineering = f'<option value="{GROUP}" title="{GROUP}" >Engineering</option>'
    assert design in text and engineering in text and text.index(design) < text.index(engineering)
    assert "Shared now with group <details" in text and "Your 2 groups' object ids" in text
    assert f'<tr><td>Engineering</td><td><code class="id">{GROUP}</code></td></tr>' in text


def test_share_and_stop_sharing_through_the_api(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "Plan the offsite", "done": False}
    fake_api.groups = [GROUP]
    browser.sign_in("alice")
    csrf = browser.csrf("/tasks")
    r = browser.post("/tasks/t1/share", data={"group_id": GROUP, "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/tasks"
    assert _api_writes(fake_api)[-1] == ("PUT", "/tasks/t1/share", {"group_id": GROUP})
    assert (
        f'shared with group <code class="id" title="group object id (no name: see the share page)">{GROUP}</code>'
        in (browser.get("/tasks").text)
    )
    assert "Stop sharing" in browser.get("/tasks/t1/share").text

    r = browser.post("/tasks/t1/share", data={"group_id": "", "csrf_token": csrf})
    assert r.status_code == 303
    assert _api_writes(fake_api)[-1] == ("PUT", "/tasks/t1/share", {"group_id": None})
    assert fake_api.tasks["t1"]["shared_with_group"] is None


@pytest.mark.parametrize("group", ["everyone", GROUP.upper(), f"{GROUP}/../x", None])
def test_a_group_that_is_no_group_id_is_refused_before_the_api_is_called(
    browser: Any, fake_api: Any, group: str | None
) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "keep me", "done": False}
    browser.sign_in("alice")
    form = {"csrf_token": browser.csrf("/tasks")} | ({"group_id": group} if group is not None else {})
    r = browser.post("/tasks/t1/share", data=form)
    assert r.status_code == 400 and "Choose one of your groups" in r.text
    assert _api_writes(fake_api) == []


def test_a_group_you_are_not_in_is_the_apis_403_shown_plainly(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "keep me", "done": False}
    fake_api.groups = [GROUP]
    browser.sign_in("alice")
    r = browser.post("/tasks/t1/share", data={"group_id": OTHER, "csrf_token": browser.csrf("/tasks")})
    assert r.status_code == 403 and "does not allow you this action" in r.text
    assert "shared_with_group" not in fake_api.tasks["t1"]


def test_sharing_needs_the_sessions_csrf_token(browser: Any, fake_api: Any) -> None:
    fake_api.tasks["t1"] = {"id": "t1", "title": "keep me", "done": False}
    fake_api.groups = [GROUP]
    browser.sign_in("alice")
    r = browser.post("/tasks/t1/share", data={"group_id": GROUP, "csrf_token": "forged"})
    assert r.status_code == 403 and _api_writes(fake_api) == []
