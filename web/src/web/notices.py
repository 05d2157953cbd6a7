"""A one-time confirmation after an action ("Task added."), shown on the next page and then gone.

The browser carries only a code from a fixed list, in an HttpOnly cookie the next page clears; the text
is this module's, never anything the person typed or a URL says. A cookie rather than the server-side
session, because sign-out ends the session and comes back through the identity provider (a top-level GET
navigation, which carries a SameSite=Lax cookie), and a link cannot plant one the way it could a query.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

NOTICES = {
    "add": "Task added.",
    "complete": "Task completed.",
    "delete": "Task deleted.",
    "delete_all": "All your tasks were deleted.",
    "share": "Task shared with the group.",
    "unshare": "Task no longer shared.",
    "signed_out": "You are signed out.",
}
# Long enough for the round trip through the identity provider's sign-out page.
MAX_AGE = 600


def cookie_name(secure: bool) -> str:
    return "__Host-notice" if secure else "notice"


def tell(response: Response, code: str, *, secure: bool) -> Response:
    """`response` carries the notice `code` (a key of NOTICES) to the next page."""
    if code not in NOTICES:
        raise ValueError(f"unknown notice {code!r}")
    response.set_cookie(
        cookie_name(secure), code, max_age=MAX_AGE, path="/", secure=secure, httponly=True, samesite="lax"
    )
    return response


def read(request: Request, *, secure: bool) -> str | None:
    """The text of the notice this request carries, if any (an unknown code shows nothing)."""
    return NOTICES.get(request.cookies.get(cookie_name(secure), ""))


def clear(request: Request, response: Response, *, secure: bool) -> None:
    """Shown once: the page that shows the notice clears it."""
    if cookie_name(secure) in request.cookies:
        response.delete_cookie(cookie_name(secure), path="/", secure=secure, httponly=True, samesite="lax")
