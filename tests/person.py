"""A person with a browser, played over HTTP: cookies as a browser keeps them, every response kept
so a test can scan all of it (for example, for tokens that must never reach the browser)."""

from __future__ import annotations

import re
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import Request

import httpx
from devtools.signin import FormBrowser, parse_forms

ALICE_OID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"


class _LocalhostIsSecure(DefaultCookiePolicy):
    """As browsers do: http://localhost is a secure context, so Secure cookies go there too."""

    def return_ok_secure(self, cookie: Any, request: Request) -> bool:
        if urlsplit(request.get_full_url()).hostname == "localhost":
            return True
        ok: bool = super().return_ok_secure(cookie, request)
        return ok


class Person:
    """One browser: follows nothing by itself, so each hop can be checked; remembers every response."""

    def __init__(self) -> None:
        # httpx copies a client's jar into a default-policy one per request, so the browser's jar is
        # kept here and applied through event hooks instead.
        self.jar = httpx.Cookies(CookieJar(policy=_LocalhostIsSecure()))

        def send_cookies(request: httpx.Request) -> None:
            request.headers.pop("cookie", None)
            self.jar.set_cookie_header(request)

        self.http = httpx.Client(
            follow_redirects=False,
            timeout=15,
            event_hooks={"request": [send_cookies], "response": [self.jar.extract_cookies]},
        )
        self.pages = FormBrowser(self.http)
        self.seen: list[httpx.Response] = []

    def get(self, url: str) -> httpx.Response:
        r = self.http.get(url)
        self.seen.append(r)
        return r

    def post(self, url: str, data: dict[str, str]) -> httpx.Response:
        r = self.http.post(url, data=data)
        self.seen.append(r)
        return r

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
        assert match, f"no sign-out form on {url}"
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
