"""Incremental consent over HTTP, as a browser would go through it, against a stack of its own.

Sign-in asks for read only. The first write goes to the consent prompt for the write scope alone,
and the write is done once on the way back; a replayed answer does nothing more; the next write
asks nothing. Refusing leaves everything as it was. The waiting write never travels through the
browser: no URL, page or cookie carries it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from devtools.signin import parse_forms

from tests.e2e.test_chain import csrf, sign_in
from tests.support.launch import RunningStack
from tests.support.people import Person

pytestmark = [pytest.mark.guidance("acquire-application-authorization-to-access-resources")]

API = "api://f6016428-a480-44ec-bc23-042b445465fc"


def _scopes(url: str) -> set[str]:
    return set(parse_qs(urlsplit(url).query)["scope"][0].split())


def test_sign_in_asks_for_read_only(consent_stack: RunningStack) -> None:
    r = Person().get(f"{consent_stack.web}/auth/login?next=/tasks")
    assert r.status_code == 302
    assert _scopes(r.headers["location"]) == {f"{API}/Tasks.Read", "openid", "profile", "offline_access"}


def test_the_first_write_asks_for_write_alone_then_is_done_exactly_once(consent_stack: RunningStack) -> None:
    stack, dave, title = consent_stack, Person(), "Book the venue (incremental consent)"
    sign_in(dave, stack, "dave@contoso.test")
    r = dave.post(f"{stack.web}/tasks", {"csrf_token": csrf(dave.get(f"{stack.web}/tasks").text), "title": title})

    # Silent acquisition failed (no consent to write yet): only now, to the identity provider.
    assert r.status_code == 303
    authorize = r.headers["location"]
    assert authorize.startswith(stack.info["emulator_front_channel"])
    assert _scopes(authorize) == {f"{API}/Tasks.ReadWrite", "openid", "profile", "offline_access"}
    assert title not in authorize and "Book" not in authorize  # the write waits sealed, never in the URL
    # A new authorization request of its own: fresh state and nonce, and PKCE with S256 as at sign-in.
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert query["code_challenge_method"] == "S256" and re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
    assert query["state"] and query["nonce"] and query["response_mode"] == "form_post"

    prompt = dave.get(authorize)
    forms, text = parse_forms(prompt.text)
    asked = re.search(r"would like to.*?:(.*?)Already granted", text)
    assert asked and "Tasks.ReadWrite" in asked.group(1) and "Tasks.Read " not in asked.group(1)
    assert "Read, create, change and delete your tasks." in text  # the scope's description
    assert "Already granted to this app (not asked again): Tasks.Read Read your tasks." in text

    answer = dave.post(authorize.split("/9c8a")[0] + forms[0].action, {**forms[0].fields, "decision": "accept"})
    back, _ = parse_forms(answer.text)
    done = dave.post(back[0].action, back[0].fields)
    assert done.status_code == 303 and done.headers["location"] == "/tasks", done.text[:300]
    assert dave.get(f"{stack.web}/tasks").text.count(title) == 1

    # The identity provider's answer, replayed: the waiting write went with the first one.
    replay = dave.post(back[0].action, back[0].fields)
    assert replay.status_code == 400 and "already been completed" in replay.text
    assert dave.get(f"{stack.web}/tasks").text.count(title) == 1

    # Consented now: the next write is silent (from the cache), no prompt.
    again = dave.post(f"{stack.web}/tasks", {"csrf_token": csrf(dave.get(f"{stack.web}/tasks").text), "title": "Two"})
    assert again.status_code == 303 and again.headers["location"] == "/tasks"

    for response in dave.seen:
        assert title not in response.headers.get("location", ""), response.url
        assert title not in response.headers.get("set-cookie", "")


def test_refusing_the_prompt_changes_nothing_and_asks_again_next_time(consent_stack: RunningStack) -> None:
    stack, bob, title = consent_stack, Person(), "Should not exist (refused)"
    sign_in(bob, stack, "bob@contoso.test")
    r = bob.post(f"{stack.web}/tasks", {"csrf_token": csrf(bob.get(f"{stack.web}/tasks").text), "title": title})
    back = bob.consent_if_asked(r, accept=False)

    assert back.status_code == 303 and back.headers["location"] == "/auth/declined"
    page = bob.get(f"{stack.web}/auth/declined")
    assert page.status_code == 403
    assert "Permission not granted" in page.text and "nothing was changed" in page.text
    assert "Signed in as" in page.text  # still signed in: refusing write does not end the session

    tasks = bob.get(f"{stack.web}/tasks")
    assert tasks.status_code == 200 and title not in tasks.text
    # Not remembered as consent: the next write asks again.
    r = bob.post(f"{stack.web}/tasks", {"csrf_token": csrf(tasks.text), "title": title})
    assert r.status_code == 303 and "/oauth2/v2.0/authorize" in r.headers["location"]


def test_a_write_is_never_done_for_an_account_other_than_the_one_that_asked(consent_stack: RunningStack) -> None:
    """alice's write waits for her consent; someone else answers the prompt in her browser (the
    identity provider's session switched to dave): the web app drops the write, for both of them."""
    stack, alice, title = consent_stack, Person(), "Not for dave (account switch)"
    # Whatever other tests of this stack granted, the web app holds no write consent for anyone now.
    _revoke_web_consent(stack)
    sign_in(alice, stack, "alice@contoso.test")
    r = alice.post(f"{stack.web}/tasks", {"csrf_token": csrf(alice.get(f"{stack.web}/tasks").text), "title": title})
    assert r.status_code == 303 and "/oauth2/v2.0/authorize" in r.headers["location"]

    for cookie in list(alice.jar.jar):
        if cookie.name == "emulator_session":  # a new sign-in at the identity provider, as dave
            alice.jar.jar.clear(cookie.domain, cookie.path, cookie.name)
    back = alice.pages.sign_in(r.headers["location"], "dave@contoso.test", stack.info["demo_password"])
    forms, _ = parse_forms(back.text)
    assert forms and forms[0].action.endswith("/auth/callback"), back.text[:300]
    answer = alice.post(forms[0].action, forms[0].fields)

    assert answer.status_code == 403 and "Nothing was changed" in answer.text
    assert title not in alice.get(f"{stack.web}/tasks").text  # alice's session, untouched
    dave = Person()
    sign_in(dave, stack, "dave@contoso.test")
    assert title not in dave.get(f"{stack.web}/tasks").text


def _revoke_web_consent(stack: RunningStack) -> None:
    target = {"tenant": "contoso", "client": "web", "resource": "api"}
    r = stack.administrator.request("POST", "/admin/consent/revoke", data=target)
    assert r.status_code == 200, r.text
