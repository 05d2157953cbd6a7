"""What routes ask for: the process's clients, the caller's session, a CSRF-checked form, a token."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
from fastapi import Request
from starlette.datastructures import FormData

from .auth import AccessTokens, Identity, SignInFailed
from .forms import read_form
from .session import Session, Sessions
from .settings import Settings

# A session younger than this that has no token is not sent to sign in again (no redirect loop).
FRESH_SESSION_SECONDS = 30


@dataclass
class Clients:
    """Built once by the lifespan and shared by every request."""

    settings: Settings
    api: aiohttp.ClientSession
    sessions: Sessions
    identity: Identity
    tokens: AccessTokens


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    pass


def clients(request: Request) -> Clients:
    c: Clients = request.app.state.clients
    return c


async def optional_session(request: Request) -> Session | None:
    c = clients(request)
    session = await c.sessions.load(request.cookies.get(c.settings.session_cookie))
    request.state.session = session
    return session


def _page_of(request: Request) -> str:
    # Where to come back to after signing in: the page itself for GET, its list page for a form post.
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    first = request.url.path.strip("/").split("/")[0]
    return f"/{first}" if first else "/"


async def require_session(request: Request) -> Session:
    session = await optional_session(request)
    if session is None:
        raise SignInRequired(_page_of(request))
    return session


async def csrf_form(request: Request) -> FormData:
    """The posted form of a signed-in user, after its synchronizer token matched the session's."""
    session = await require_session(request)
    form = await read_form(request)
    token = form.get("csrf_token")
    if not session.csrf_ok(token if isinstance(token, str) else None):
        raise CsrfRejected()
    return form


async def api_token(request: Request, session: Session) -> str:  # zt: token-management
    """The api access token, silently from the user's server-side cache; else sign in again."""
    token = await clients(request).tokens.for_api(session)
    if token is None:
        if time.time() - session.created_at < FRESH_SESSION_SECONDS:
            # Signed in moments ago and still no token: sending the person round again would loop.
            raise SignInFailed(
                "No access to the api",
                "You signed in, but no token for the api could be "
                "obtained for you. Sign out and try again, or ask an administrator.",
                status=502,
            )
        raise SignInRequired(_page_of(request))
    return token
