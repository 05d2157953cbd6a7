"""Lists come a page at a time ($top, $skiptoken, the next page in `Link`), never whole, never past the maximum."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from urllib.parse import quote

import pytest
from downstream_api.db import Record
from fastapi.testclient import TestClient
from sqlalchemy import update
from zerotrust.paging import DEFAULT_TOP, MAX_TOP

from .test_records import create

pytestmark = pytest.mark.guidance("protect-api")

both_backends = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
Headers = Callable[..., dict[str, str]]
NEXT = re.compile(r'^<(/records\?[^>]+)>; rel="next"$')


def _all_pages(client: TestClient, headers: dict[str, str], first: str) -> list[list[str]]:
    pages, url = [], first
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        pages.append([item["id"] for item in r.json()])
        link = r.headers.get("link")
        found = NEXT.match(link) if link else None
        assert link is None or found, link
        url = found.group(1) if found else ""
    return pages


@both_backends
def test_pages_cover_the_list_once_in_order(client: TestClient, as_user: Headers) -> None:
    alice = as_user()
    made = [create(client, alice, f"task {n}")["id"] for n in range(7)]
    assert client.get("/records", headers=alice).headers.get("link") is None  # one page holds them all
    pages = _all_pages(client, alice, "/records?$top=3")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == made


@both_backends
def test_records_made_in_the_same_instant_are_neither_repeated_nor_skipped(
    client: TestClient, as_user: Headers
) -> None:
    alice = as_user()
    made = {create(client, alice, f"task {n}")["id"] for n in range(5)}
    same = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with client.app.state.clients.database.engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(update(Record).values(created_at=same))
    pages = _all_pages(client, alice, "/records?$top=2")
    seen = [i for p in pages for i in p]
    assert sorted(seen) == seen and set(seen) == made and len(seen) == 5


@both_backends
def test_the_default_page_and_the_maximum(client: TestClient, as_user: Headers) -> None:
    alice = as_user()
    assert client.get(f"/records?$top={MAX_TOP}", headers=alice).status_code == 200
    for top in (MAX_TOP + 1, 0, -1, "ten", "1e3", ""):
        r = client.get(f"/records?$top={top}", headers=alice)
        assert r.status_code == 400, top
        assert r.json()["detail"].startswith(f"$top must be a whole number from 1 to {MAX_TOP}")
    assert DEFAULT_TOP <= MAX_TOP


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        "AAAA",  # decodes, but to nothing this API made
        "MjAyNi0wMS0wMXx4",  # a date without a zone
        "x" * 201,
        quote("MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHwnIE9SIDE9MQ"),  # "2026-01-01T00:00:00+00:00|' OR 1=1"
    ],
)
@pytest.mark.parametrize("path", ["/records", "/records/shared", "/org/records"])
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_skiptoken_this_api_did_not_make_is_400(client: TestClient, as_user: Headers, path: str, token: str) -> None:
    headers = as_user(scp="Records.Read Records.Read.All")
    r = client.get(f"{path}?$skiptoken={token}", headers=headers)
    assert r.status_code == 400, r.text
    assert "$skiptoken is not one this API gave" in r.json()["detail"]
