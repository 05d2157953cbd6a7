"""What the web's routes ask for: the process's clients, the caller's session, a CSRF-checked form, a token.

async def tasks_page(request: Request, c: ClientsDep, token: ApiToken) -> Response: ...
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import aiohttp
from cachetools import TTLCache
from fastapi import Depends, Request
from starlette.datastructures import FormData
from zerotrust.audit import decided, refuse
from zerotrust.cae import challenged_claims
from zerotrust.graph import GRAPH_SCOPE
from zerotrust.limits import RateLimits, retry_after
from zerotrust.onbehalf import CONSENT_MISSING
from zerotrust.tracing import recorded

from .api_client import ClaimsChallenge
from .forms import read_form
from .sessions import Session
from .settings import Settings
from .signin import SignIn, SignInFailed
from .traces import RecentTraces

log = logging.getLogger("web.access")
# What the token service answers when only signing in again can help.
SIGN_IN_AGAIN = frozenset({"invalid_grant", "interaction_required", "no_token"})

# A session younger than this that has no token is not sent to sign in again (no redirect loop).
FRESH_SESSION_SECONDS = 30


@dataclass(frozen=True)
class Clients:
    """What the web app holds for its lifetime (built by main.lifespan)."""

    settings: Settings
    api: aiohttp.ClientSession
    signin: SignIn
    graph: aiohttp.ClientSession  # Microsoft Graph (settings.graph_url), on the signed-in user's behalf
    limits: RateLimits  # per peer (zerotrust.service) and per session (optional_session)
    traces: RecentTraces | None  # each session's recent trace ids, where spans can be shown (settings.trace_dir)
    # When each session's user was last confirmed with Graph, and the profile Graph gave (per process).
    confirmed: TTLCache[str, tuple[float, dict[str, Any]]] = field(default_factory=lambda: TTLCache(10_000, 300))


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    pass


class TooManyRequests(Exception):
    """This session sent more requests than its rate limit; `seconds`: when to try again."""

    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def clients_of(request: Request) -> Clients:
    """The one place the app's state is read (built by main.lifespan)."""
    found: Clients = request.app.state.clients
    return found


async def clients(request: Request) -> Clients:
    return clients_of(request)


ClientsDep = Annotated[Clients, Depends(clients)]

# Each dependency below calls the one before it itself, taking the request alone: under load every FastAPI
# dependency node costs tens of microseconds, so a page pays for one node per need.


async def optional_session(request: Request) -> Session | None:
    # Read once per request, whichever dependency asks first (the per-session rate limit counts it once).
    read: tuple[Session | None] | None = getattr(request.state, "session_read", None)
    if read is not None:
        return read[0]
    c = clients_of(request)
    session = await c.signin.session(request)
    request.state.session_read = (session,)
    request.state.session = session  # the pages show who is signed in
    if session is not None:
        decided(request.state, session.user.tid, session.user.oid)
        # zt: protect-api
        # Per caller, as at the APIs: here the caller is the session (its record key, never the id itself).
        if wait := c.limits.callers.take(session.key):
            refuse(request.state, "too_many_requests")
            raise TooManyRequests(retry_after(wait))
        if c.traces is not None:
            await remember_trace(request, c.traces, session)
    return session


async def remember_trace(request: Request, traces: RecentTraces, session: Session) -> None:
    """This request's trace id joins the session's recent ones (a trace page shows only those), if its spans are
    kept (sampled); a look at a trace is not itself remembered, or a few looks would push out the requests worth
    seeing."""
    cid = getattr(request.state, "correlation_id", None)
    if request.scope["path"].startswith("/traces"):  # not request.url: building it costs more than the rest
        request.state.recent_traces = await traces.of(session)
    elif isinstance(cid, str) and recorded():
        # Only a kept trace costs the store a read and a write: under load, at most the sampling rate's.
        request.state.recent_traces = await traces.remember(session, cid, time.time())


OptionalSession = Annotated[Session | None, Depends(optional_session)]


def page_of(request: Request) -> str:
    # Where to come back to after signing in: the page itself for GET, its list page for a form post.
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    first = request.url.path.strip("/").split("/")[0]
    return f"/{first}" if first else "/"


async def require_session(request: Request) -> Session:
    session = await optional_session(request)
    if session is None:
        raise SignInRequired(page_of(request))
    return session


CurrentSession = Annotated[Session, Depends(require_session)]


# zt: secure-with-cae
async def confirm_with_graph(request: Request, c: Clients, session: Session) -> None:
    """Graph, a CAE resource, still accepts this user: their profile for the page, or ClaimsChallenge
    when Graph wants a fresh sign-in. Graph unreachable: the page goes on (tokens still expire). Asked at
    most once per `graph_check_seconds` per session."""
    recent = c.confirmed.get(session.key)
    if recent is not None and time.monotonic() - recent[0] < c.settings.graph_check_seconds:
        request.state.profile = recent[1]
        return
    got = await c.signin.tokens.acquire(session, [GRAPH_SCOPE])
    consent_missing = got is not None and bool(CONSENT_MISSING & set(got.error_codes))
    refused = got is None or (got.token is None and got.error in SIGN_IN_AGAIN and not consent_missing)
    if refused and time.time() - session.created_at >= FRESH_SESSION_SECONDS:
        # zt: user-authentication
        # The refresh token refused (revoked, account disabled, expired): the session ends with it. (Just
        # signed in and already refused is not sent round again: that would loop; api_token says why.)
        await end_session(c, session)
        raise SignInRequired(page_of(request))
    if got is None:
        return
    if got.token is None:
        log.warning("no Graph token for the signed-in user (%s): the page goes on without it", got.error)
        return
    url = f"{c.settings.graph_url.rstrip('/')}/v1.0/me"
    try:
        async with c.graph.get(url, headers={"Authorization": f"Bearer {got.token}"}) as response:
            status, challenge = response.status, response.headers.get("WWW-Authenticate")
            profile = await response.json(content_type=None) if status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("Graph unreachable: %r", exc)
        return
    if status == 401 and (claims := challenged_claims(challenge)) is not None:
        raise ClaimsChallenge(claims)
    if status == 404:
        # The account is gone from the directory.
        await end_session(c, session)
        raise SignInRequired(page_of(request))
    if isinstance(profile, dict) and profile.get("id") == session.user.oid:
        request.state.profile = profile
        c.confirmed[session.key] = (time.monotonic(), profile)
    elif status != 200:
        log.warning("Graph answered %s for the signed-in user", status)


async def end_session(c: Clients, session: Session) -> None:
    await c.signin.sessions.end(session.id)
    if c.traces is not None:
        await c.traces.forget(session)
    c.signin.tokens.forget(session.key)
    c.confirmed.pop(session.key, None)


async def confirmed_session(request: Request) -> Session:
    session = await require_session(request)
    if not getattr(request.state, "session_confirmed", False):
        await confirm_with_graph(request, clients_of(request), session)
        request.state.session_confirmed = True
    return session


ConfirmedSession = Annotated[Session, Depends(confirmed_session)]


async def csrf_form(request: Request) -> FormData:
    """The posted form of a signed-in user, after its synchronizer token matched the session's."""
    session = await require_session(request)
    form = await read_form(request)
    if not session.csrf_ok(form.get("csrf_token")):
        raise CsrfRejected()
    return form


CsrfForm = Annotated[FormData, Depends(csrf_form)]


# zt: token-management
async def api_token(request: Request) -> str:
    """The api access token, silently from the user's server-side cache; else sign in again."""
    session, c = await confirmed_session(request), clients_of(request)
    # zt: developer-strategy-application-permissions
    # A user is present, so the web calls the api with the user's delegated token only; it holds no app
    # role on the api and never uses client credentials for it (that is for the daemon, with no user).
    got = await c.signin.tokens.acquire(session, list(c.settings.api_scopes))
    if got is not None and got.token is not None:
        return got.token
    # No usable token and no usable refresh token (expired, revoked, consent withdrawn).
    c.signin.tokens.forget(session.key)
    # None: no tokens held at all (a claims challenge dropped them), and a sign-in brings them back. A refusal
    # moments after signing in would only come back here:
    if got is not None and time.time() - session.created_at < FRESH_SESSION_SECONDS:
        # Signed in moments ago and still no token: sending the person round again would loop.
        raise SignInFailed(
            "No access to the api",
            "You signed in, but no token for the api could be obtained for you. "
            "Sign out and try again, or ask an administrator.",
            status=502,
        )
    raise SignInRequired(page_of(request))


ApiToken = Annotated[str, Depends(api_token)]
