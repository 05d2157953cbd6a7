"""Lists come in pages, never whole: Microsoft Graph's query names, a JSON array as before.

# zt: protect-api
`$top` asks for up to that many items (DEFAULT_TOP when absent, never more than MAX_TOP: 400 beyond it),
`$skiptoken` for the page after the one that gave it. Where more items follow, the answer carries the next
page's address in a `Link` header (RFC 8288, `rel="next"`), relative to the list's own: Graph puts it in the
body as `@odata.nextLink`, but these bodies stay JSON arrays, so existing clients keep working and see the
first page. The token is opaque to clients; it holds where the page ended (the sort key: creation time and
id), not an offset, so rows added or removed meanwhile neither repeat nor skip one. It is not signed: it
only moves within what the caller's query already limits to them.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import Depends, HTTPException, Request, Response

from .openapi import reads_query

DEFAULT_TOP = 100
MAX_TOP = 500
MAX_SKIPTOKEN = 200
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}\Z")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,200}\Z")


class Keyed(Protocol):
    """An item of a paged list: ordered by (created_at, id)."""

    id: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Page:
    top: int
    after: tuple[dt.datetime, str] | None = None  # where the previous page ended
    skiptoken: str | None = None

    def query(self) -> dict[str, str]:
        """This page's query, to ask the next tier for the same page."""
        return {"$top": str(self.top), **({"$skiptoken": self.skiptoken} if self.skiptoken else {})}


def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


def skiptoken_after(item: Keyed) -> str:
    created = item.created_at if item.created_at.tzinfo else item.created_at.replace(tzinfo=dt.UTC)
    raw = f"{created.astimezone(dt.UTC).isoformat()}|{item.id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def read_skiptoken(token: str) -> tuple[dt.datetime, str]:
    """Where a page ended, from its token; 400 for anything this module did not make."""
    wrong = _bad("$skiptoken is not one this API gave: use the Link header's address, or start without one.")
    if len(token) > MAX_SKIPTOKEN or not _TOKEN.match(token):
        raise wrong
    try:
        created, _, item = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition("|")
        when = dt.datetime.fromisoformat(created)
    except ValueError:
        raise wrong from None
    if when.tzinfo is None or not _ID.match(item):
        raise wrong
    return when.astimezone(dt.UTC), item


# Async though it awaits nothing: FastAPI runs a plain `def` dependency in a worker thread, a thread hop
# on every list request (tests/perf/test_request_path.py). The query is read here rather than declared as two
# `Query` parameters: FastAPI's per-parameter handling cost more than the whole check below (~90k instructions
# each a request, make bench-instructions); what it gave, the schema, openapi.reads_query gives.
async def page_of(request: Request) -> Page:
    top, skiptoken = request.query_params.get("$top"), request.query_params.get("$skiptoken")
    if top is None:
        size = DEFAULT_TOP
    elif not top.isdigit() or not 1 <= int(top) <= MAX_TOP:
        raise _bad(f"$top must be a whole number from 1 to {MAX_TOP}; ask for the next page with $skiptoken.")
    else:
        size = int(top)
    return Page(size, read_skiptoken(skiptoken) if skiptoken is not None else None, skiptoken)


reads_query(
    page_of,
    {
        "name": "$top",
        "description": f"How many items, 1 to {MAX_TOP} (default {DEFAULT_TOP}).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP, "default": DEFAULT_TOP},
    },
    {
        "name": "$skiptoken",
        "description": "The next page, from the previous answer's Link header.",
        "schema": {"type": "string", "maxLength": MAX_SKIPTOKEN},
    },
)
Paging = Annotated[Page, Depends(page_of)]


def link_next(path: str, page: Page, skiptoken: str) -> str:
    return f'<{path}?{urlencode({"$top": page.top, "$skiptoken": skiptoken})}>; rel="next"'


def paged(response: Response, path: str, page: Page, items: Sequence[Any]) -> list[Any]:
    """`items` as fetched (up to top + 1: one more says another page follows): the page, and the next
    page's Link on `response` when there is one."""
    shown = list(items[: page.top])
    if len(items) > page.top:
        response.headers["Link"] = link_next(path, page, skiptoken_after(shown[-1]))
    return shown


def next_skiptoken(link: str | None) -> str | None:
    """The `$skiptoken` of a Link header's rel="next" address (another tier's answer), if any."""
    for part in (link or "").split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            found = parse_qs(urlsplit(target.strip().strip("<>")).query).get("$skiptoken")
            if found and _TOKEN.match(found[0]):
                return found[0]
    return None


__all__ = [
    "DEFAULT_TOP",
    "MAX_TOP",
    "Page",
    "Paging",
    "link_next",
    "next_skiptoken",
    "page_of",
    "paged",
    "read_skiptoken",
    "skiptoken_after",
]
