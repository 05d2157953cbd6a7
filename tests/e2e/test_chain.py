"""The chain end to end over HTTP, as a person in a browser would use it, against `make run`'s stack.

Sign in as alice, add a task, see it, reload, sign out; bob doesn't see alice's task; carol (another
tenant) is refused with a clear page. Every response the browser got is scanned for tokens.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urljoin

import pytest
from zerotrust.redact import JWT_SHAPE

from tests.support.launch import RunningStack
from tests.support.people import Person

pytestmark = [
    pytest.mark.guidance("user-authentication"),
    pytest.mark.guidance("identity-iam-development-best-practices"),
]


def sign_in(person: Person, stack: RunningStack, user: str, next_path: str = "/tasks") -> None:
    r = person.get(f"{stack.web}/auth/login?next={next_path}")
    assert r.status_code == 302
    action, fields = person.sign_in_at_emulator(r.headers["location"], stack.info["demo_password"], user)
    r = person.post(action, fields)
    assert r.status_code == 303 and r.headers["location"] == next_path, r.text[:300]


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def sign_out(person: Person, stack: RunningStack) -> None:
    r = person.post(f"{stack.web}/auth/logout", {"csrf_token": csrf(person.get(f"{stack.web}/").text)})
    assert r.status_code == 302
    r = person.get(r.headers["location"])  # the identity provider's end-session page sends us back
    assert r.status_code == 302 and r.headers["location"] == f"{stack.web}/"


def assert_no_token_reached_the_browser(person: Person) -> None:
    for response in person.seen:
        exposed = [response.text, str(response.url), *(f"{k}: {v}" for k, v in response.headers.multi_items())]
        for part in exposed:
            assert not JWT_SHAPE.search(part), f"token-shaped string in a response from {response.url}"
    for cookie in person.jar.jar:
        assert not JWT_SHAPE.search(cookie.value or ""), cookie.name


def test_alice_adds_a_task_bob_does_not_see_it_and_no_token_reaches_the_browser(stack: RunningStack) -> None:
    alice = Person()
    sign_in(alice, stack, "alice@contoso.test")
    page = alice.get(f"{stack.web}/tasks")
    assert page.status_code == 200 and "Your tasks" in page.text
    title = "Water the plants (e2e)"
    # The first write may ask alice for the write scope (incremental consent), once.
    r = alice.consent_if_asked(alice.post(f"{stack.web}/tasks", {"csrf_token": csrf(page.text), "title": title}))
    assert r.status_code == 303
    assert title in alice.get(urljoin(stack.web, r.headers["location"])).text
    assert title in alice.get(f"{stack.web}/tasks").text  # reload: still there, kept downstream
    sign_out(alice, stack)
    assert alice.get(f"{stack.web}/tasks").status_code == 302  # signed out: back to sign-in

    bob = Person()
    sign_in(bob, stack, "bob@contoso.test")
    bobs = bob.get(f"{stack.web}/tasks")
    assert bobs.status_code == 200 and title not in bobs.text
    sign_out(bob, stack)

    assert_no_token_reached_the_browser(alice)
    assert_no_token_reached_the_browser(bob)


def test_carol_from_another_tenant_is_refused_with_a_clear_page(stack: RunningStack) -> None:
    carol = Person()
    r = carol.get(f"{stack.web}/auth/login?next=/tasks")
    page = carol.pages.sign_in(r.headers["location"], "carol@fabrikam.test", stack.info["demo_password"])
    assert page.status_code == 400
    assert "We couldn't sign you in" in page.text and "AADSTS50020" in page.text
    assert "carol@fabrikam.test" in page.text
    assert carol.get(f"{stack.web}/tasks").status_code == 302  # no session came of it


@pytest.mark.guidance("api-calls-api")
def test_chain_page_shows_the_same_user_at_every_tier(stack: RunningStack) -> None:
    alice = Person()
    sign_in(alice, stack, "alice@contoso.test", "/chain")
    page = alice.get(f"{stack.web}/chain").text
    oid, tid = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912", stack.info["tenants"]["contoso"]
    assert page.count(oid) >= 3 and page.count(tid) >= 3  # web, api, downstream-api
    assert "f6016428-a480-44ec-bc23-042b445465fc" in page  # audience at the api
    assert "56416278-656a-410f-9888-db490850ca20" in page  # audience at downstream-api
    # azpacr 2 at both APIs: the web and the api each proved themselves with a federated credential, no secret.
    cells = r"<small class=\"why\">[^<]+</small></th><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>"
    credential = re.search(r"Calling app(?:&#39;|')s credential \(azpacr\)" + cells, page)
    assert credential, "no credential row on the chain page"
    shown = tuple(re.sub(r"<[^>]+>", "", cell) for cell in credential.groups())  # values sit in <span class="id">
    assert shown == ("—", *["2: certificate or federated credential"] * 2), shown
    # The last hop: SQLite in this stack, which has no database identity, and the page says so.
    hop = re.sub(r"<[^>]+>", "", page.split('<dl class="hop">', 1)[1].split("</dl>", 1)[0])
    assert "sqlite" in hop and "no database identity" in hop
    assert_no_token_reached_the_browser(alice)


@pytest.mark.guidance("identity-iam-development-best-practices")
def test_the_chain_pages_trace_shows_every_tier_and_the_database_with_consistent_parents(stack: RunningStack) -> None:
    alice = Person()
    sign_in(alice, stack, "alice@contoso.test", "/chain")
    chain = alice.get(f"{stack.web}/chain")
    link = re.search(r'href="(/traces/([0-9a-f]{32}))">See this request', chain.text)
    assert chain.status_code == 200 and link, "no link to the request's trace"
    assert link.group(2) == chain.headers["x-correlation-id"]  # this very request's trace
    # A tier writes its span as it answers: the last may land a moment after the page. Poll, within a bound.
    row = re.compile(
        r'<tr class="lane-([a-z-]+)" id="span-(\w+)" data-span="\w+" data-parent="(\w*)" '
        r'data-service="([a-z-]+)" data-kind="([A-Z]+)"'
    )
    deadline = time.monotonic() + 10
    while True:
        page = alice.get(f"{stack.web}{link.group(1)}")
        assert page.status_code == 200, page.text[:300]
        rows = row.findall(page.text)
        servers = {service for _, _, _, service, kind in rows if kind == "SERVER"}
        if servers == {"web", "api", "downstream-api"} and any(lane == "database" for lane, *_ in rows):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
    by_id = {span_id: (service, kind) for _, span_id, _, service, kind in rows}
    parents = {span_id: parent for _, span_id, parent, _, _ in rows}
    roots = [span_id for span_id, parent in parents.items() if not parent]
    assert [by_id[r] for r in roots] == [("web", "SERVER")]  # one root: the web's, which starts the trace
    for span_id, (service, kind) in by_id.items():
        if kind == "SERVER" and service != "web":  # each inner tier's server span: a child of its caller's call
            caller = by_id[parents[span_id]]
            assert caller == ({"api": "web", "downstream-api": "api"}[service], "CLIENT"), (service, caller)
    database = [span_id for lane, span_id, *_ in rows if lane == "database"]
    assert all(by_id[parents[d]] == ("downstream-api", "SERVER") for d in database)
    # Someone else's session can't see it.
    bob = Person()
    sign_in(bob, stack, "bob@contoso.test", "/tasks")
    assert bob.get(f"{stack.web}{link.group(1)}").status_code == 404
    assert_no_token_reached_the_browser(alice)


@pytest.mark.guidance("api-calls-api")
def test_a_steady_state_task_request_makes_no_call_to_the_token_endpoint(stack: RunningStack) -> None:
    alice = Person()
    sign_in(alice, stack, "alice@contoso.test")
    assert alice.get(f"{stack.web}/tasks").status_code == 200  # the first: may fill the OBO cache
    before = stack.token_requests()
    for _ in range(20):
        assert alice.get(f"{stack.web}/tasks").status_code == 200
    assert stack.token_requests() == before
