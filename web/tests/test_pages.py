"""Tasks, the chain page, CSRF, security headers, and tokens that never reach the browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from web.main import create_app
from web.settings import Settings
from web.tour import load_tour
from zerotrust.redact import JWT_SHAPE


def _api_calls(fake_api: Any, method: str) -> list[Any]:
    return [c for c in fake_api.calls if c[0] == method]


def test_healthz_answers_without_sign_in(browser: Any) -> None:
    r = browser.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.guidance("app-registration")
def test_the_terms_and_privacy_pages_the_registrations_link_answer_without_sign_in(browser: Any) -> None:
    registrations = (Path(__file__).resolve().parents[2] / "infra" / "registrations.yaml").read_text()
    for path, heading in (("/terms", "Terms of service"), ("/privacy", "Privacy statement")):
        assert f'"{{web_origin}}{path}"' in registrations
        r = browser.get(path)
        assert r.status_code == 200, path
        assert f"<h1>{heading}</h1>" in r.text and "This is a sample" in r.text
        assert f'href="{path}"' in r.text  # linked from every page's footer too


def test_tasks_without_a_session_send_the_person_to_sign_in(browser: Any) -> None:
    r = browser.get("/tasks")
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"


def test_tasks_list_add_complete_delete_through_the_api(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    assert "No tasks yet" in browser.get("/tasks").text
    csrf = browser.csrf("/tasks")

    r = browser.post("/tasks", data={"title": "  Write the threat model  ", "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/tasks"
    _, path, auth, body = _api_calls(fake_api, "POST")[-1]
    assert (path, body) == ("/tasks", {"title": "Write the threat model"})
    assert auth.startswith("Bearer ") and JWT_SHAPE.fullmatch(auth.removeprefix("Bearer "))

    page = browser.get("/tasks")
    assert "Write the threat model" in page.text
    task_id = next(iter(fake_api.tasks))
    assert browser.post(f"/tasks/{task_id}/complete", data={"csrf_token": csrf}).status_code == 303
    assert _api_calls(fake_api, "PATCH")[-1][1:] == (f"/tasks/{task_id}", auth, {"done": True})
    assert fake_api.tasks[task_id]["done"] is True

    assert browser.post(f"/tasks/{task_id}/delete", data={"csrf_token": csrf}).status_code == 303
    assert _api_calls(fake_api, "DELETE")[-1][1] == f"/tasks/{task_id}"
    assert not fake_api.tasks


@pytest.mark.parametrize("form", [{}, {"csrf_token": ""}, {"csrf_token": "forged"}])
def test_state_changing_posts_without_the_session_csrf_token_are_refused(
    browser: Any, fake_api: Any, form: dict[str, str]
) -> None:
    browser.sign_in("alice")
    fake_api.tasks["t1"] = {"id": "t1", "title": "keep me", "done": False}
    for path in ("/tasks", "/tasks/t1/complete", "/tasks/t1/delete"):
        r = browser.post(path, data={"title": "x", **form})
        assert r.status_code == 403, path
        assert "CSRF" in r.text
    assert [c for c in fake_api.calls if c[0] != "GET"] == []


def test_another_sessions_csrf_token_does_not_work(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    old_token = browser.csrf("/tasks")
    browser.sign_in("alice")  # a new session, so a new token
    assert browser.post("/tasks", data={"title": "x", "csrf_token": old_token}).status_code == 403


def test_cross_site_posts_are_refused_even_with_a_token(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    csrf = browser.csrf("/tasks")
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        r = browser.post("/tasks", data={"title": "x", "csrf_token": csrf}, headers=headers)
        assert r.status_code == 403
    # Same-origin posts under Referrer-Policy: no-referrer carry Origin: null; those are fine.
    ok = browser.post(
        "/tasks",
        data={"title": "x", "csrf_token": csrf},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert ok.status_code == 303


def test_task_ids_cannot_smuggle_a_path_to_the_api(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    csrf = browser.csrf("/tasks")
    r = browser.post("/tasks/..%2Fme/delete", data={"csrf_token": csrf})
    assert r.status_code in (400, 404)
    assert _api_calls(fake_api, "DELETE") == []


def test_task_titles_are_escaped(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    fake_api.tasks["t1"] = {"id": "t1", "title": "<script>alert(1)</script>", "done": False}
    html = browser.get("/tasks").text
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_title_is_checked_before_the_api_is_called(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    csrf = browser.csrf("/tasks")
    for title in ("", "   ", "x" * 201):
        assert browser.post("/tasks", data={"title": title, "csrf_token": csrf}).status_code == 400
    assert _api_calls(fake_api, "POST") == []


def test_steady_state_requests_never_call_the_token_endpoint(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    assert browser.idp.code_redemptions == 1
    # The first page gets a token for Graph (the profile every page shows) with the refresh token.
    assert browser.get("/tasks").status_code == 200
    before = len(browser.idp.token_requests)
    for _ in range(5):
        assert browser.get("/tasks").status_code == 200
        assert browser.get("/chain").status_code == 200
    assert len(browser.idp.token_requests) == before
    tokens = {c[2] for c in fake_api.calls}
    assert len(tokens) == 1  # the same cached access token every time


def test_an_expiring_token_is_refreshed_silently_and_the_cache_saved(browser: Any, fake_api: Any) -> None:
    browser.idp.access_token_lifetime = 120  # MSAL refreshes tokens with under five minutes left
    browser.sign_in("alice")
    assert browser.get("/tasks").status_code == 200
    assert browser.idp.refreshes == 2  # the api's token and Graph's
    first = fake_api.calls[-1][2]
    browser.idp.access_token_lifetime = 3600
    assert browser.get("/tasks").status_code == 200
    assert browser.idp.refreshes == 4
    assert fake_api.calls[-1][2] != first
    # And now they last: served from the cache.
    assert browser.get("/tasks").status_code == 200
    assert browser.idp.refreshes == 4


def test_no_usable_token_sends_the_person_to_sign_in_again(browser: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import web.dependencies

    browser.idp.access_token_lifetime = 60
    browser.idp.refuse_refresh = True
    browser.sign_in("alice")
    # Moments after sign-in a missing token is an error page, never a redirect loop...
    loop_guard = browser.get("/tasks")
    assert loop_guard.status_code == 502 and "No access to the api" in loop_guard.text
    # ...later it is a fresh sign-in that comes back here.
    monkeypatch.setattr(web.dependencies, "FRESH_SESSION_SECONDS", 0)
    r = browser.get("/tasks")
    assert r.status_code == 302 and r.headers["location"] == "/auth/login?next=%2Ftasks"


@pytest.mark.parametrize(
    "status, shown, title",
    [
        (401, 502, "did not accept the sign-in"),
        (403, 403, "refused this request"),
        (500, 502, "The api failed"),
        (503, 503, "Temporarily unavailable"),
    ],
)
def test_api_refusals_become_clear_pages(browser: Any, fake_api: Any, status: int, shown: int, title: str) -> None:
    browser.sign_in("alice")
    fake_api.fail_with = status
    r = browser.get("/tasks")
    assert r.status_code == shown and title in r.text
    assert "Traceback" not in r.text


def test_api_down_is_a_clear_page(make_browser: Any, nothing_listening: str) -> None:
    browser = make_browser(api_url=nothing_listening)
    browser.sign_in("alice")
    tasks = browser.get("/tasks")
    assert tasks.status_code == 503 and "The api is unavailable" in tasks.text
    chain = browser.get("/chain")
    assert chain.status_code == 503 and "The api is unavailable" in chain.text
    assert "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912" in chain.text  # the web's own view still shows


def test_chain_shows_the_caller_at_each_tier(browser: Any) -> None:
    browser.sign_in("alice")
    r = browser.get("/chain")
    assert r.status_code == 200
    assert r.text.count("3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912") == 3
    for expected in (
        "pairwise-api",
        "pairwise-downstream",
        "Records.ReadWrite",
        "Tasks.ReadWrite",
        "56416278-656a-410f-9888-db490850ca20",
    ):
        assert expected in r.text


def test_chain_names_the_apps_with_their_ids_a_click_away(browser: Any) -> None:
    browser.sign_in("alice")
    text = browser.get("/chain").text
    downstream = "56416278-656a-410f-9888-db490850ca20"
    assert (
        '<details class="named-id"><summary>Zero Trust Sample - Downstream API</summary>'
        f'<span class="id" title="application id">{downstream}</span></details>'
    ) in text
    assert "<summary>Zero Trust Sample - Web</summary>" in text  # the web app itself, the api's calling app


def test_the_app_names_are_the_registered_ones() -> None:
    """The web's default names are the registrations' display names (infra/registrations.yaml), so they
    can't drift apart unnoticed."""
    apps = yaml.safe_load((Path(__file__).resolve().parents[2] / "infra" / "registrations.yaml").read_text())
    apps = apps["applications"]
    registered = {spec["application_id"]: spec["display_name"] for spec in apps.values()}
    names = Settings().app_names
    assert names and all(registered[app_id] == name for app_id, name in names.items())


@pytest.mark.guidance("zero-trust-token-customization")
def test_chain_shows_member_or_guest_and_country_from_the_id_tokens_optional_claims(browser: Any) -> None:
    browser.sign_in("alice")
    r = browser.get("/chain")
    assert r.status_code == 200
    row = r.text.split("Member or guest (acct)", 1)[1].split("</tr>", 1)[0]
    assert '<td><span class="id">member</span></td>' in row
    country = r.text.split("Country (ctry)", 1)[1].split("</tr>", 1)[0]
    assert '<td><span class="id">NL</span></td>' in country


def test_chain_when_downstream_is_unavailable(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    fake_api.downstream_view = {"error": "temporarily_unavailable"}  # what the api passes on then
    r = browser.get("/chain")
    assert r.status_code == 200
    assert "could not report what downstream-api sees" in r.text
    assert "pairwise-api" in r.text and "pairwise-downstream" not in r.text


def test_tokens_never_reach_the_browser(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice", "/tasks")
    csrf = browser.csrf("/tasks")
    browser.post("/tasks", data={"title": "t", "csrf_token": csrf})
    for path in ("/", "/tasks", "/chain"):
        browser.get(path)
    browser.post("/auth/logout", data={"csrf_token": csrf})
    secrets_seen = [t for t in browser.idp.issued if len(t) > 20]
    assert secrets_seen
    for r in browser.responses:
        exposed = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.multi_items()) + str(r.url)
        assert not JWT_SHAPE.search(exposed), r.url
        assert not any(t in exposed for t in secrets_seen), r.url


def test_every_response_has_the_security_headers(browser: Any) -> None:
    browser.sign_in("alice")
    for path in ("/", "/tasks", "/chain", "/healthz", "/static/web.css", "/nowhere", "/auth/login"):
        r = browser.get(path)
        csp = r.headers["content-security-policy"]
        assert csp == (
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; "
            "form-action 'self' https://login.example.test"
        ), path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store", path
        assert "strict-transport-security" not in r.headers  # http://localhost; production sets it
    # The web's own refusals before any route (a cross-site post, a declared oversize form) too.
    for refused in (
        browser.post("/tasks", data={"title": "x"}, headers={"Origin": "https://evil.example"}),
        browser.post("/tasks", content=b"x", headers={"Content-Length": "999999"}),
    ):
        assert refused.status_code in (403, 413)
        assert refused.headers["content-security-policy"].startswith("default-src 'self'")
        assert refused.headers["x-frame-options"] == "DENY" and refused.headers["cache-control"] == "no-store"


def test_production_tells_browsers_to_use_https_only(production_ok: dict[str, object], tmp_path: Path) -> None:
    # No identity provider is reached for these pages: the settings alone decide the header.
    settings = Settings(**production_ok, state_dir=tmp_path)  # type: ignore[arg-type]
    with TestClient(create_app(settings), base_url="https://web.example.net") as client:
        for path in ("/healthz", "/nowhere", "/static/web.css"):
            r = client.get(path)
            assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains", path


def test_no_inline_script_or_style_in_any_page(browser: Any) -> None:
    browser.sign_in("alice")
    for path in ("/", "/tasks", "/chain", "/nowhere"):
        html = browser.get(path).text
        assert "<script" not in html and "style=" not in html and "<style" not in html
        assert re.search(r"\son[a-z]+=", html) is None


def test_home_is_the_tour_with_sign_in_state(browser: Any) -> None:
    home = browser.get("/")
    assert home.status_code == 200
    assert "Not signed in" in home.text and "/auth/login?next=" in home.text
    for principle in ("Verify explicitly", "Use least privilege", "Assume breach"):
        assert principle in home.text
    assert "downstream-api" in home.text and "database" in home.text
    tour = load_tour()
    assert home.text.count('class="badge done"') == len(tour.done) >= 5
    assert home.text.count('class="badge planned"') == 27 - len(tour.done)


def test_oversized_forms_are_refused_before_reading(browser: Any) -> None:
    browser.sign_in("alice")
    r = browser.post(
        "/tasks",
        content=b"title=" + b"x" * 20000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


def _chunks(total: int, prefix: bytes = b"title=") -> Iterator[bytes]:
    # A generator body goes out chunked: no Content-Length for the app to check up front.
    yield prefix
    for _ in range(total // 4096):
        yield b"x" * 4096


@pytest.mark.parametrize("path", ["/tasks", "/auth/callback", "/auth/logout"])
def test_a_chunked_form_is_capped_while_it_streams(browser: Any, fake_api: Any, path: str) -> None:
    browser.sign_in("alice")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = browser.post(path, content=_chunks(1024 * 1024), headers=form)
    assert r.status_code == 413 and "Too much data" in r.text
    assert "content-length" not in r.request.headers
    assert [c for c in fake_api.calls if c[0] != "GET"] == []


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"&".join(b"f%d=1" % n for n in range(50)), "application/x-www-form-urlencoded", 400),
        (b"title=\xff\xfe", "application/x-www-form-urlencoded", 400),
        (b'{"title": "json"}', "application/json", 415),
        (
            b"--b\r\nContent-Disposition: form-data; name=title\r\n\r\nx\r\n--b--",
            "multipart/form-data; boundary=b",
            415,
        ),
    ],
)
def test_forms_that_are_not_this_apps_own_are_refused_plainly(
    browser: Any, fake_api: Any, body: bytes, content_type: str, status: int
) -> None:
    browser.sign_in("alice")
    r = browser.post("/tasks", content=body, headers={"Content-Type": content_type})
    assert r.status_code == status and "Traceback" not in r.text
    assert [c for c in fake_api.calls if c[0] != "GET"] == []


def test_a_429_from_the_api_is_a_clear_page_that_says_when(browser: Any, fake_api: Any) -> None:
    browser.sign_in("alice")
    fake_api.fail_with = 429
    r = browser.get("/tasks")
    assert r.status_code == 429 and "Too many requests" in r.text and "wait 1 s and try again" in r.text
    assert r.headers["retry-after"] == "1"


def test_tasks_come_a_page_at_a_time(browser: Any, fake_api: Any) -> None:
    from web.api_client import PAGE_SIZE

    browser.sign_in("alice")
    for n in range(PAGE_SIZE * 2 + 3):
        fake_api.tasks[f"t{n}"] = {"id": f"t{n}", "title": f"task number {n}", "done": False}
    first = browser.get("/tasks")
    assert first.status_code == 200 and first.text.count('class="title"') == PAGE_SIZE
    assert "task number 0<" in first.text and f"task number {PAGE_SIZE}<" not in first.text
    assert ("GET", "/tasks") in [(c[0], c[1]) for c in fake_api.calls]
    seen, url = PAGE_SIZE, re.search(r'href="(/tasks\?page=[^"]+)" rel="next"', first.text)
    while url:
        r = browser.get(url.group(1))
        assert r.status_code == 200 and 'href="/tasks">First page' in r.text
        seen += r.text.count('class="title"')
        url = re.search(r'href="(/tasks\?page=[^"]+)" rel="next"', r.text)
    assert seen == PAGE_SIZE * 2 + 3
    assert browser.get("/tasks?page=not%20a%20token").status_code == 400


def test_a_session_over_its_rate_gets_429_until_its_window_passes(make_browser: Any, tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    browser = make_browser(rate_caller_per_second=1.0, rate_caller_burst=5, rate_clock_file=clock)
    browser.sign_in("alice")
    answers = [browser.get("/tasks") for _ in range(8)]
    refused = [r for r in answers if r.status_code == 429]
    assert refused and all(r.status_code == 200 for r in answers[: len(answers) - len(refused)])
    assert refused[-1].headers["retry-after"] == "1" and "Too many requests" in refused[-1].text
    assert browser.get("/").status_code == 429  # every page of the session counts, not one route
    clock.write_text("10")  # the limits' clock, ten seconds on: no sleeping
    assert browser.get("/tasks").status_code == 200


def test_a_peer_over_its_rate_gets_429_before_any_route_runs(make_browser: Any, tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    browser = make_browser(rate_peer_per_second=1.0, rate_peer_burst=3, rate_clock_file=clock)
    assert [browser.get("/auth/login").status_code for _ in range(4)] == [302, 302, 302, 429]
    refused = browser.get("/")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"].startswith("text/plain") and "Too many requests" in refused.text
    assert refused.headers["x-content-type-options"] == "nosniff"  # inside the shared layers
    assert browser.get("/healthz").status_code == 200
    clock.write_text("10")
    assert browser.get("/").status_code == 200
