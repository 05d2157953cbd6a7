"""Microsoft Graph on the signed-in user's behalf, a resource that evaluates access continuously.

Graph is reached at the URL of this tier's configuration (https://graph.microsoft.com in Azure), never at
one found in a token, with a token obtained on-behalf-of the user for the least privilege the call needs.
Graph is a CAE resource: it re-checks a cp1 token on every request and refuses one issued before the
user's sessions were revoked (or the account disabled) with a claims challenge. The token service is then
asked once more, with those claims; when only a fresh sign-in will do, it says so (an `OboError` with the
claims), and the tier answers its own caller by the relay rule (`OboError.for_caller`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from .cae import challenged_claims
from .onbehalf import OboError
from .tokens import Principal

log = logging.getLogger(__name__)

GRAPH_RESOURCE = "https://graph.microsoft.com"
# Delegated, least privileged for the signed-in user's profile and own memberships (Graph's permission table).
GRAPH_SCOPE = f"{GRAPH_RESOURCE}/User.Read"
# Delegated, least privileged to read the names of the user's groups (an administrator consents to it).
GROUP_NAMES_SCOPE = f"{GRAPH_RESOURCE}/GroupMember.Read.All"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON for a 200, else None
    challenge: str | None = None  # the WWW-Authenticate header of a 401


# One request: method, URL, JSON body (or None), headers.
Send = Callable[[str, str, dict[str, Any] | None, dict[str, str]], Awaitable[Answer]]


def send_json(session: aiohttp.ClientSession) -> Send:
    async def send(method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Answer:
        async with session.request(method, url, json=body, headers=headers) as response:
            parsed = await response.json(content_type=None) if response.status == 200 else None
            return Answer(response.status, parsed, response.headers.get("WWW-Authenticate"))

    return send


class OnBehalfTokens(Protocol):
    """What Graph needs of zerotrust.onbehalf.OnBehalfOf."""

    async def token(self, user: Principal, assertion: str, scopes: list[str], *, claims: str | None = None) -> str: ...


class GraphUnavailable(Exception):
    """Graph did not answer, or answered something other than what was asked for."""


class Graph:
    def __init__(self, graph_url: str, obo: OnBehalfTokens, send: Send, *, scope: str = GRAPH_SCOPE) -> None:
        # Configuration, never a token: https://graph.microsoft.com in Azure, the emulator locally.
        self.base = f"{graph_url.rstrip('/')}/v1.0"
        self.obo, self.send, self.scope = obo, send, scope
        self.calls = 0

    async def request(
        self,
        principal: Principal,
        assertion: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        scope: str | None = None,
    ) -> Any:
        """Graph's answer to `method path` for the user, with a token for `scope` (default: this client's);
        OboError when the token service refuses (with the claims when a fresh sign-in is needed),
        GraphUnavailable when Graph can't serve it. `path` may be a whole URL Graph gave (a nextLink)
        only if it is under this client's Graph URL."""
        claims: str | None = None
        if path.startswith("/"):
            url = self.base + path
        elif path.startswith(self.base + "/"):
            url = path
        else:
            # A next page link elsewhere than the configured Graph: never followed (it would get the token).
            log.warning("Graph linked to a page outside its own URL")
            raise GraphUnavailable
        for _ in range(2):
            token = await self.obo.token(principal, assertion, [scope or self.scope], claims=claims)
            self.calls += 1
            try:
                answer = await self.send(method, url, body, {"Authorization": f"Bearer {token}"})
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                log.warning("Graph unreachable: %r", exc)
                raise GraphUnavailable from None
            if answer.status == 200:
                return answer.body
            if answer.status != 401 or claims is not None:
                break
            # zt: secure-with-cae
            # Graph re-evaluated the token and refused it. Asked once more with Graph's claims, the token
            # service either issues a token that satisfies them or answers that the user must sign in.
            claims = challenged_claims(answer.challenge)
            if claims is None:
                break
        if answer.status == 401 and claims is not None:
            raise OboError(401, "invalid_token", "Your sign-in is no longer valid; sign in again.", claims=claims)
        log.warning("Graph answered %s to %s %s", answer.status, method, path)
        raise GraphUnavailable

    async def courtesy(self, principal: Principal, assertion: str, path: str, *, scope: str) -> Any | None:
        """GET `path` for something shown, never decided on (a name): None when it can't be had (no consent
        for `scope`, Graph away). An OboError carrying claims still goes up: the user must sign in again."""
        try:
            return await self.request(principal, assertion, "GET", path, scope=scope)
        except OboError as exc:
            if exc.claims is not None:
                raise
            log.info("no %s from Graph (not consented?): %s", scope.rsplit("/", 1)[-1], exc)
        except GraphUnavailable:
            pass
        return None
