"""The tests' people: a person with a browser played over HTTP (`Person`: cookies as a browser keeps
them, every response kept, so a test can scan all of it for tokens that must never reach the browser),
and a person in a real browser (`Visitor`: Debian's headless Chromium driven by Playwright)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from http.cookies import SimpleCookie
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit
from urllib.request import Request

import httpx
import pytest
from devtools.chromium import CHROMIUM, LAUNCH_ARGS
from devtools.emulator_admin import EmulatorAdmin
from devtools.paths import repo_root
from devtools.signin import FormBrowser, parse_forms
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    Response,
    expect,
    sync_playwright,
)
from zerotrust.redact import JWT_SHAPE

ALICE_OID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"


class _LocalhostIsSecure(DefaultCookiePolicy):
    """As browsers do: http://localhost is a secure context, so Secure cookies go there too."""

    def return_ok_secure(self, cookie: Any, request: Request) -> bool:
        if urlsplit(request.get_full_url()).hostname == "localhost":
            return True
        ok: bool = super().return_ok_secure(cookie, request)
        return ok


class Person:
    """One browser over HTTP: follows nothing by itself, so each hop can be checked; remembers every response.
    `http`: a client of the app in process (Starlette's TestClient keeps its own cookies); by default a
    real HTTP client with a browser's cookie jar."""

    def __init__(self, http: httpx.Client | None = None) -> None:
        # httpx copies a client's jar into a default-policy one per request, so the browser's jar is
        # kept here and applied through event hooks instead.
        self.jar = httpx.Cookies(CookieJar(policy=_LocalhostIsSecure()))

        def send_cookies(request: httpx.Request) -> None:
            request.headers.pop("cookie", None)
            self.jar.set_cookie_header(request)

        self.http = http or httpx.Client(
            follow_redirects=False,
            timeout=15,
            event_hooks={"request": [send_cookies], "response": [self.jar.extract_cookies]},
        )
        self.pages = FormBrowser(self.http)
        self.seen: list[httpx.Response] = []

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        r = self.http.get(url, follow_redirects=False, **kwargs)
        self.seen.append(r)
        return r

    def post(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        r = self.http.post(url, data=data, follow_redirects=False, **kwargs)
        self.seen.append(r)
        return r

    @staticmethod
    def cookie_attributes(response: httpx.Response, name: str) -> dict[str, str]:
        """The attributes of one Set-Cookie, lower-cased names; flags map to 'True'."""
        for header in response.headers.get_list("set-cookie"):
            cookie = SimpleCookie()
            cookie.load(header)
            if name in cookie:
                morsel = cookie[name]
                attrs = {k.lower(): str(v) for k, v in morsel.items() if v not in ("", False)}
                attrs["value"] = morsel.value
                return attrs
        raise AssertionError(f"no Set-Cookie for {name}")

    def sign_in_at_emulator(
        self, auth_uri: str, password: str, user: str = "alice@contoso.test"
    ) -> tuple[str, dict[str, str]]:
        """The emulator's login (and consent) pages; returns the auto-posting form that goes back."""
        page = self.pages.sign_in(auth_uri, user, password)
        self.seen.append(page)
        assert page.status_code == 200, page.text[:500]
        forms, _ = parse_forms(page.text)
        assert forms and set(forms[0].fields) >= {"code", "state"}, page.text[:500]
        return urljoin(str(page.url), forms[0].action), forms[0].fields

    def csrf(self, url: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.get(url).text)
        assert match, f"no form with a CSRF token on {url}"
        return match.group(1)

    def consent_if_asked(self, response: httpx.Response, *, accept: bool = True) -> httpx.Response:
        """A write may first send the browser to the consent prompt (incremental consent): answer it
        and return the web app's answer to what the identity provider posts back. Any other
        response is returned as it is."""
        location = response.headers.get("location", "")
        if response.status_code != 303 or "/oauth2/v2.0/authorize" not in location:
            return response
        prompt = self.get(location)
        assert prompt.status_code == 200, prompt.text[:500]
        forms, _ = parse_forms(prompt.text)
        assert forms and forms[0].action.endswith("/consent"), prompt.text[:500]
        answer = self.post(
            urljoin(location, forms[0].action), {**forms[0].fields, "decision": "accept" if accept else "decline"}
        )
        forms, _ = parse_forms(answer.text)
        assert answer.status_code == 200 and forms, answer.text[:500]
        return self.post(urljoin(str(answer.url), forms[0].action), forms[0].fields)


# -- a person in a real browser ----------------------------------------------------------------

ARTIFACTS = repo_root() / "test-artifacts" / "browser"
SCANNED_BODIES = ("text/html", "application/json", "javascript", "css")
# __Host-notice: a one-time confirmation's fixed code (web/notices.py), no secret, HttpOnly like the rest.
WEB_COOKIES = {"__Host-session", "__Host-signin", "__Host-admin-consent", "__Host-notice"}
# Cookies are scoped by host, not port: the emulator's own SSO cookie, set on localhost:<front port>, is
# also among the browser's cookies for localhost:<web port>. On Azure the identity provider is
# another host (login.microsoftonline.com) and the web app never sees it.
EMULATOR_COOKIE = "emulator_session"
CSP_MESSAGE = re.compile(r"Content Security Policy|Refused to (load|execute|apply|send|frame|connect)", re.I)


@contextmanager
def chromium() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} missing: `make test` installs it as root on Debian; else `sudo apt-get install -y chromium`",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        except Error as exc:
            pytest.fail(
                f"{CHROMIUM} did not start ({exc.message.splitlines()[0]}): "
                "`sudo apt-get install --reinstall -y chromium`",
                pytrace=False,
            )
        try:
            yield browser
        finally:
            browser.close()


class Site(Protocol):
    """Where a visitor goes: the web app, and the identity provider's front door and demo password
    (`info`, as in stack.json). A RunningStack is one; so is any deployment a test starts itself."""

    @property
    def web(self) -> str: ...

    @property
    def info(self) -> dict[str, Any]: ...


class Visitor:
    """One person with a browser context of their own; keeps everything the browser received."""

    def __init__(self, browser: Browser, stack: Site, user: str) -> None:
        self.stack, self.user = stack, user
        self.context: BrowserContext = browser.new_context(viewport={"width": 1200, "height": 800})
        self.context.set_default_timeout(15_000)
        self.page: Page = self.context.new_page()
        self.received: list[tuple[str, str]] = []  # (where, text) for the token scan
        self.unreadable: list[str] = []
        self.csp_errors: list[str] = []
        self.page_errors: list[str] = []
        self.expected_bodies: set[str] = set()  # URLs of responses whose body must be scanned
        self.bodies: set[str] = set()  # URLs whose body was scanned
        self.page.on("response", self._keep)
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.on("Fetch.requestPaused", self._paused)
        self.cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Response"}]})
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    def _keep(self, response: Response) -> None:
        where = f"{response.request.method} {response.url} ({response.status})"
        self.received.append((f"{where} url", response.url))
        if response.request.post_data:
            self.received.append((f"{where} request body", response.request.post_data))
        for header in response.headers_array():
            self.received.append((f"{where} header {header['name']}", header["value"]))
        if self._scanned(response.status, response.headers.get("content-type", "")):
            self.expected_bodies.add(response.url)

    @staticmethod
    def _scanned(status: int, content_type: str) -> bool:
        return not 300 <= status < 400 and any(t in content_type for t in SCANNED_BODIES)

    def _paused(self, event: dict[str, Any]) -> None:
        """Each response, held by the browser until its body is read: a page that moves on at once (the
        form_post page submits itself) would otherwise take its body, and its script's, with it."""
        request_id = event["requestId"]
        try:
            status = event.get("responseStatusCode") or 0
            headers = {h["name"].lower(): h["value"] for h in event.get("responseHeaders", [])}
            if self._scanned(status, headers.get("content-type", "")):
                got = self.cdp.send("Fetch.getResponseBody", {"requestId": request_id})
                body = base64.b64decode(got["body"]).decode(errors="replace") if got["base64Encoded"] else got["body"]
                url = event["request"]["url"]
                self.received.append((f"{event['request']['method']} {url} ({status}) body", body))
                self.bodies.add(url)
        except Error as exc:
            self.unreadable.append(f"{event['request']['url']}: {exc.message}")
        finally:
            self.cdp.send("Fetch.continueRequest", {"requestId": request_id})

    def _console(self, message: ConsoleMessage) -> None:
        if CSP_MESSAGE.search(message.text):
            self.csp_errors.append(f"{message.type} at {self.page.url}: {message.text}")

    def shot(self, step: str) -> None:
        self.page.screenshot(path=ARTIFACTS / f"{step}.png", full_page=True)
        self.assert_cookies_opaque()

    def assert_cookies_opaque(self) -> None:
        cookies = self.context.cookies(self.stack.web)
        assert {c["name"] for c in cookies} <= WEB_COOKIES | {EMULATOR_COOKIE}, cookies
        for cookie in cookies:
            assert cookie["httpOnly"], f"{cookie['name']} is readable by scripts"
            assert not JWT_SHAPE.search(cookie["value"]), f"token-shaped value in cookie {cookie['name']}"
            if cookie["name"] in WEB_COOKIES:
                assert cookie["secure"] and cookie["path"] == "/", cookie

    def has_session(self) -> bool:
        return any(c["name"] == "__Host-session" for c in self.context.cookies(self.stack.web))

    def open_web_app(self) -> None:
        self.page.goto(f"{self.stack.web}/")
        expect(self.page.get_by_role("heading", level=1)).to_have_text("Develop using Zero Trust principles, live")
        expect(self.page.locator("header.top")).to_have_css("display", "flex")  # web.css loaded

    def sign_in(self, step: str) -> None:
        """From the web app's header, through the emulator's login page (and consent, if asked)."""
        self.page.get_by_role("banner").get_by_role("link", name="Sign in").click()
        expect(self.page).to_have_url(re.compile("^" + re.escape(self.stack.info["emulator_front_channel"])))
        expect(self.page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(self.page.locator(".banner")).to_have_css("background-color", "rgb(255, 244, 206)")  # emulator.css
        self.page.get_by_label("Email or username").fill(self.user)
        self.page.get_by_label("Password").fill(self.stack.info["demo_password"])
        self.shot(f"{step}-emulator-sign-in")
        self.page.get_by_role("button", name="Sign in").click()

    def finish_sign_in(self, step: str) -> None:
        """Accept consent if the emulator asks for it; end up signed in at the web app."""
        accept = self.page.get_by_role("button", name="Accept")
        signed_in = self.page.get_by_role("banner").get_by_text("Signed in as")
        expect(accept.or_(signed_in)).to_be_visible()
        if accept.is_visible():
            expect(self.page.get_by_role("heading", name="Permissions requested")).to_be_visible()
            self.shot(f"{step}-consent")
            accept.click()
        expect(signed_in).to_be_visible()
        expect(self.page.get_by_role("banner")).to_contain_text(self.user)
        assert self.page.url.startswith(self.stack.web), self.page.url
        assert self.has_session()

    def assert_nothing_leaked(self) -> None:
        assert self.received, "no response was recorded"
        assert not self.unreadable, self.unreadable
        assert self.expected_bodies <= self.bodies, f"bodies not scanned: {self.expected_bodies - self.bodies}"
        for where, text in self.received:
            assert not JWT_SHAPE.search(text), f"token-shaped string in {where}"
        self.assert_cookies_opaque()
        assert not self.csp_errors, self.csp_errors
        assert not self.page_errors, self.page_errors

    def close(self) -> None:
        self.context.close()


def signed_in(browser: Browser, stack: Site, user: str, step: str) -> Visitor:
    """A new visitor, signed in at the web app (consenting if asked)."""
    visitor = Visitor(browser, stack, user)
    visitor.open_web_app()
    visitor.sign_in(step)
    visitor.finish_sign_in(step)
    return visitor


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def accept_if_asked(visitor: Visitor, until: Locator, step: str) -> None:
    """Consent when the identity provider asks (a first write asks for the write scope, a first sign-in
    for read), then expect `until`; a visitor who consented before goes straight there."""
    accept = visitor.page.get_by_role("button", name="Accept")
    expect(accept.or_(until)).to_be_visible()
    if accept.is_visible():
        visitor.shot(step)
        accept.click()
    expect(until).to_be_visible()


def add_task(visitor: Visitor, title: str, step: str) -> Locator:
    """On the Tasks page: add a task (consenting to write if asked); its row in the list."""
    page = visitor.page
    nav(page, "Tasks")
    page.get_by_label("New task").fill(title)
    page.get_by_role("button", name="Add").click()
    task = page.locator("ul.tasks li").filter(has_text=title)
    accept_if_asked(visitor, task, step)
    expect(task).to_have_count(1)
    return task


def confirm_its_you(visitor: Visitor, step: str) -> None:
    """The web's "Confirm it's you" page, then the emulator's second factor (the one-time code)."""
    page = visitor.page
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    visitor.shot(f"{step}-confirm")
    page.get_by_role("link", name="Continue").click()
    verify = page.get_by_role("heading", name="Verify it's you")
    accept = page.get_by_role("button", name="Accept")  # the write scope, if not consented yet
    expect(verify.or_(accept)).to_be_visible()
    if accept.is_visible():
        accept.click()
    expect(verify).to_be_visible()
    codes = EmulatorAdmin(visitor.stack.info).get("/admin/one-time-codes")
    [code] = [c["code"] for c in codes["codes"] if c["upn"] == visitor.user]
    page.get_by_label("One-time code").fill(code)
    visitor.shot(f"{step}-second-factor")
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile("^" + re.escape(visitor.stack.web)))
