"""The chain page hop by hop: per tier the claims it validated, each row with why it matters, the calling app's
credential type said in words, groups or their overage, and the database hop as downstream-api reports it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import ALICE, TENANT, WEB_APP_ID

pytestmark = pytest.mark.guidance("api-calls-api")

API_APP_ID = "f6016428-a480-44ec-bc23-042b445465fc"
ISSUER = f"https://login.example.test/{TENANT}/v2.0"


def downstream(**database: Any) -> dict[str, Any]:
    return {
        "tenant_id": TENANT,
        "object_id": ALICE.oid,
        "subject": "pairwise-downstream",
        "issuer": ISSUER,
        "audience": "56416278-656a-410f-9888-db490850ca20",
        "token_version": "2.0",
        "calling_app": API_APP_ID,
        "calling_app_acr": "2",
        "calling_app_authentication": "certificate or federated credential",
        "scopes": ["Records.Read"],
        "client_capabilities": ["cp1"],
        "authentication_contexts": ["c1"],
        "groups": [],
        "group_overage": True,
        "database": database,
    }


def row(page: str, label: str) -> list[str]:
    """The row's cells (web, api, downstream-api), tags removed."""
    found = re.search(re.escape(label) + r"<small class=\"why\">[^<]+</small></th>(.*?)</tr>", page, re.S)
    assert found, f"no row {label!r} with its why"
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", found.group(1), re.S)]


def test_every_claim_row_says_why_it_matters(browser: Any, fake_api: Any) -> None:
    fake_api.downstream_view = downstream(system="sqlite", role=None, identity=None, credential="the file")
    browser.sign_in("alice", "/chain")
    page = browser.get("/chain").text
    rows = re.findall(r'<tr><th scope="row">', page)
    assert len(rows) == page.count('<small class="why">') == 16
    # The web column: the ID token's own (MSAL checked its issuer).
    web_issuer = f"https://login.example.test/{TENANT}/v2.0"
    assert row(page, "Issuer (iss)") == [web_issuer, "—", ISSUER]
    assert row(page, "Subject (sub)") == ["pairwise-web", "pairwise-api", "pairwise-downstream"]  # one per app
    assert '<span class="id">https://login.example.test/</span><wbr>' in page  # may break before the tenant
    # The app by its registered name, its id a click away (a <details>: both are in the cell's text).
    assert row(page, "Audience (aud)")[0] == f"Zero Trust Sample - Web{WEB_APP_ID} (this web app)"
    assert row(page, "Token version (ver)") == ["2.0", "—", "2.0"]
    assert row(page, "Calling app's credential (azpacr)") == ["—", "—", "2: certificate or federated credential"]
    assert row(page, "Client capabilities (xms_cc)")[2] == "cp1"
    assert row(page, "Authentication contexts (acrs)")[2] == "c1"
    assert row(page, "Groups (groups, _claim_names)")[2].startswith("overage:")
    assert "SQLite is a file" in page and "The last hop" in page


def test_the_database_hop_names_the_role_and_the_managed_identity(browser: Any, fake_api: Any) -> None:
    fake_api.downstream_view = downstream(
        system="postgresql",
        role="downstream-api",
        database="records",
        identity="managed identity (client id 11111111-2222-4333-8444-555555555555)",
        credential="an Entra token of the managed identity as the password of each new connection (never stored)",
        superuser=False,
        bypasses_row_level_security=False,
    )
    browser.sign_in("alice", "/chain")
    page = browser.get("/chain").text
    hop = re.sub(r"<[^>]+>", "", page.split('<dl class="hop">', 1)[1].split("</dl>", 1)[0])
    assert "role downstream-api, managed identity (client id 11111111-2222-4333-8444-555555555555)" in hop
    assert "not a superuser" in hop and "bound by row-level security" in hop
    assert "postgresql · records" in hop


def test_without_the_database_hop_the_section_is_not_shown(browser: Any) -> None:
    browser.sign_in("alice", "/chain")
    page = browser.get("/chain").text
    assert "The last hop" not in page
    assert row(page, "Calling app's credential (azpacr)") == ["—", "—", "—"]
