"""Drive the identity emulator's sign-in pages the way a person in a browser would, without one.

Used by `zt token` (device code flow: the "person" approves the code) and by the HTTP-level tests
(auth code flow: submit the login form, accept consent, capture the redirect back to the app).
It reads forms from the HTML it is served, so it exercises the real pages, hidden fields included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", "")))
        elif self.forms and tag == "input" and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif self.forms and tag == "button":
            self.forms[-1].buttons.append((a.get("name", ""), a.get("value", "")))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class SignInError(RuntimeError):
    """The pages did not lead where a person would expect; the message says what the page said."""


def parse_forms(html: str) -> tuple[list[Form], str]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms, " ".join(" ".join(parser.text).split())


class FormBrowser:
    def __init__(self, client: httpx.Client | None = None) -> None:
        self.http = client or httpx.Client(follow_redirects=False, timeout=10)

    def close(self) -> None:
        self.http.close()

    def submit(self, page: httpx.Response, fill: dict[str, str], button: str | None = None) -> httpx.Response:
        forms, text = parse_forms(page.text)
        if not forms:
            raise SignInError(f"expected a form at {page.url}, got {page.status_code}: {text[:300]}")
        form = forms[0]
        data = {**form.fields, **{k: v for k, v in fill.items() if k in form.fields}}
        if button is not None:
            data.update(dict([b for b in form.buttons if b == ("decision", button) or b[0] == button][:1]))
        return self.http.post(urljoin(str(page.url), form.action), data=data)

    def sign_in(self, auth_uri: str, username: str, password: str, *, consent: bool = True) -> httpx.Response:
        """Open the authorize URL, sign in, answer consent; return the response that leaves the emulator.

        That is a 302 to the app's redirect URI (query mode) or an auto-posting page (form_post).
        """
        response = self.http.get(auth_uri)
        return self._through_pages(response, username, password, consent)

    def approve_device(
        self, verification_uri: str, user_code: str, username: str, password: str, *, consent: bool = True
    ) -> httpx.Response:
        page = self.http.get(verification_uri)
        response = self.submit(page, {"user_code": user_code})
        return self._through_pages(response, username, password, consent)

    def _through_pages(self, response: httpx.Response, username: str, password: str, consent: bool) -> httpx.Response:
        for _ in range(4):
            if response.status_code != 200:
                return response
            forms, _ = parse_forms(response.text)
            fields = forms[0].fields if forms else {}
            if "password" in fields:
                response = self.submit(response, {"username": username, "password": password})
            elif "txn" in fields and forms[0].action.endswith("/consent"):
                response = self.submit(response, {}, "accept" if consent else "decline")
            else:
                return response
        return response
