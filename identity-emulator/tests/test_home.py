"""The emulator's own pages for a person: a home page at `/` (not a bare JSON 404), and sign-in forms that say
exactly where the demo password is, in the same words as `make run`'s summary."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from devtools.layout import emulator_summary
from fastapi.testclient import TestClient
from identity_emulator.main import create_app
from identity_emulator.settings import EmulatorSettings

from .conftest import FRONT, LOOPBACK_PEER


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    state = tmp_path_factory.mktemp("home") / "emulator"
    settings = EmulatorSettings(state_dir=state, port=8443, front_port=8444, public_host="localhost")
    with TestClient(create_app(settings), base_url=FRONT, client=LOOPBACK_PEER, follow_redirects=False) as client:
        yield client, state


def _links(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def test_the_root_is_a_home_page_naming_entra_and_its_endpoints(front: tuple[TestClient, Path]) -> None:
    client, _ = front
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Microsoft Entra ID" in r.text and "development and tests only" in r.text
    links = _links(r.text)
    contoso = client.app.state.emulator.directory.home_tenant_id
    assert f"/{contoso}/v2.0/.well-known/openid-configuration" in links
    assert f"/{contoso}/discovery/v2.0/keys" in links
    assert "http://localhost:8444/admin" in links
    # Every link it offers answers, on this address, without a certificate the browser doesn't trust.
    for link in links:
        if link.startswith("/") and not link.startswith("/static/"):
            assert client.get(link).status_code == 200, link
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


def test_other_unknown_paths_keep_the_json_404(front: tuple[TestClient, Path]) -> None:
    client, _ = front
    r = client.get("/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert client.post("/", data={}).status_code == 405


def test_sign_in_pages_say_where_the_password_is_as_make_run_does(front: tuple[TestClient, Path]) -> None:
    client, state = front
    password_file = state / "demo-password"
    command = f"cat {password_file}"
    value = secrets.token_hex(8)  # stands for the password: the summary names its file, never it
    summary = "\n".join(emulator_summary(state)({"demo_password": value}))
    assert command in summary and value not in summary
    assert password_file.read_text().strip()  # the file the pages name is the one the emulator reads
    admin = client.get("/admin/signin")
    directory = client.app.state.emulator.directory
    query = {
        "client_id": directory.by_name["web"].application_id,
        "response_type": "code",
        "redirect_uri": "http://localhost:8000/auth/callback",
        "scope": "openid",
        "code_challenge_method": "S256",
        "code_challenge": "A" * 43,
    }
    login = client.get(f"/{directory.home_tenant_id}/oauth2/v2.0/authorize?{urlencode(query)}")
    for page in (login, admin):
        assert page.status_code == 200, page.text[:300]
        assert command in page.text and "make run</code> prints it" not in page.text
