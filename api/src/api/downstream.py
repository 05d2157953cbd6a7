"""Calls from the api to downstream-api, each with an on-behalf-of token for the signed-in user.

The incoming token is never relayed: downstream-api accepts only tokens minted for it, requested
by the api (azp), carrying the same user (oid, tid). Reads ask for Records.Read, writes for
Records.ReadWrite: each hop gets no more than the operation needs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from zerotrust.apponly import AppOnlyClient, AppOnlyFailure
from zerotrust.cae import challenged_claims, for_caller
from zerotrust.graph import Graph, GraphUnavailable
from zerotrust.onbehalf import OboError, OnBehalfOf
from zerotrust.paging import Page, next_skiptoken
from zerotrust.protect import context_request
from zerotrust.tokens import Principal
from zerotrust.tracing import client_span, outgoing, traced

log = logging.getLogger("api.downstream")


@dataclass
class DownstreamError(Exception):
    """The downstream tier (or the token service) could not serve this; mapped to a clean answer."""

    status: int
    error: str
    description: str
    correlation_id: str
    claims: str | None = None  # a claims challenge for the caller (only ever for one that declared cp1)
    retry_after: str | None = None  # for a 429: the seconds downstream-api asked the caller to wait

    # zt: identity-standards-based-development-methodologies - downstream-api refuses a user the
    # provisioning service deactivated with 403 account_deactivated: that is about the caller, not
    # this tier's token, so it is passed on as it is (every other 401/403 from downstream is a 502).
    DEACTIVATED = "account_deactivated"

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description, "correlation_id": self.correlation_id}


def _deactivated(text: str) -> bool:
    try:
        detail = json.loads(text).get("detail")
    except (ValueError, AttributeError):
        return False
    return isinstance(detail, dict) and detail.get("error") == DownstreamError.DEACTIVATED


# zt: api-calls-api
class Downstream:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        obo: OnBehalfOf,
        scope_base: str,
        app_only: AppOnlyClient | None = None,
        graph: Graph | None = None,
    ) -> None:
        self.session = session
        self.obo = obo
        self.scope_base = scope_base
        self.app_only = app_only
        self.graph = graph

    def on_behalf_of(self, principal: Principal, assertion: str, correlation_id: str) -> Hop:
        return Hop(self, principal, assertion, correlation_id)

    def as_app(self, caller: Principal, correlation_id: str) -> AppHop:
        """The api as itself, for an app-only caller's request; refused for a user's (see AppHop)."""
        return AppHop(self, caller, correlation_id)

    async def send(
        self, method: str, path: str, token: str, correlation_id: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        status, answer, _ = await self.exchange(method, path, token, correlation_id, body)
        return status, answer

    async def exchange(
        self,
        method: str,
        path: str,
        token: str,
        correlation_id: str,
        body: dict[str, Any] | None = None,
        page: Page | None = None,
    ) -> tuple[int, Any, str | None]:
        """As `send`, for `page` of a list: the answer and the next page's $skiptoken, if one follows."""
        params = page.query() if page is not None else None
        try:
            with client_span(f"{method} downstream-api", **{"http.request.method": method}):
                # The trace context (traceparent) carries the correlation id down.
                headers = outgoing({"Authorization": f"Bearer {token}"})
                async with self.session.request(method, path, json=body, headers=headers, params=params) as response:
                    text = await response.text()
                    status = response.status
                    challenge = response.headers.get("WWW-Authenticate")
                    wait = response.headers.get("Retry-After")
                    link = response.headers.get("Link")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("downstream-api unreachable: %r correlation_id=%s", exc, correlation_id)
            raise DownstreamError(
                503, "temporarily_unavailable", "downstream-api can't be reached.", correlation_id
            ) from None
        if status == 401 and (claims := challenged_claims(challenge)) is not None:
            # zt: secure-with-cae
            # downstream-api (Graph, behind it) wants the user to sign in again: the caller may hear it.
            raise OboError(401, "invalid_token", "Your sign-in is no longer valid; sign in again.", claims=claims)
        if status == 429:
            # zt: protect-api
            # downstream-api limits this caller (or this tier as a whole): the caller hears when to retry.
            seconds = wait if wait is not None and wait.isdigit() else "1"
            raise DownstreamError(
                429,
                "too_many_requests",
                f"Too many requests; wait {seconds} s and try again.",
                correlation_id,
                retry_after=seconds,
            )
        if status == 403 and _deactivated(text):
            raise DownstreamError(
                403,
                DownstreamError.DEACTIVATED,
                "This account has been deactivated by your organization's provisioning service; "
                "ask your administrator to reactivate it.",
                correlation_id,
            )
        # A 403 without a bearer challenge is downstream's decision about the user (e.g. sharing with
        # a group they are not in): theirs to hear as is.
        if status >= 500 or status == 401 or (status == 403 and challenge is not None):
            # A 401/403 challenge from downstream means this tier's token was wrong, not the caller's: 502.
            log.warning("downstream-api answered %s correlation_id=%s", status, correlation_id)
            raise DownstreamError(
                502 if status < 500 else 503,
                "bad_gateway" if status < 500 else "temporarily_unavailable",
                "downstream-api could not serve the request.",
                correlation_id,
            )
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            raise DownstreamError(
                502, "bad_gateway", "downstream-api sent an unreadable answer.", correlation_id
            ) from None
        return status, answer, next_skiptoken(link)


@dataclass
class Hop:
    """One incoming request's calls to downstream-api: its user, its token, its correlation id."""

    downstream: Downstream
    principal: Principal
    assertion: str
    correlation_id: str

    async def call(
        self,
        method: str,
        path: str,
        *,
        write: bool = False,
        body: dict[str, Any] | None = None,
        scope_value: str | None = None,
        context: str | None = None,
    ) -> tuple[int, Any]:
        """`context`: an authentication context the call needs downstream too, asked for in the exchange (the
        user's token carries it, so downstream-api's token will)."""
        status, answer, _ = await self.page(method, path, None, write, body, scope_value, context)
        return status, answer

    async def page(
        self,
        method: str,
        path: str,
        page: Page | None,
        write: bool = False,
        body: dict[str, Any] | None = None,
        scope_value: str | None = None,
        context: str | None = None,
    ) -> tuple[int, Any, str | None]:
        """As `call`, for `page` of a list: also the next page's $skiptoken, if one follows."""
        value = scope_value or ("Records.ReadWrite" if write else "Records.Read")
        scope = f"{self.downstream.scope_base}/{value}"
        claims = context_request(context) if context else None
        try:
            # zt: token-management
            # Its own span, so a trace shows the exchange: at the token service the first time, from the cache after.
            exchange = self.downstream.obo.token(self.principal, self.assertion, [scope], claims=claims)
            token = await traced("on-behalf-of token", exchange, **{"server.address": "token service"})
            return await self.downstream.exchange(method, path, token, self.correlation_id, body, page)
        except OboError as exc:
            raise self._refused(exc) from None

    async def graph(self, method: str, path: str) -> Any:
        """Microsoft Graph's answer for the user (GET /me: their profile), on their behalf."""
        graph = self.downstream.graph
        if graph is None:
            raise DownstreamError(503, "temporarily_unavailable", "Graph is not configured.", self.correlation_id)
        try:
            answer = graph.request(self.principal, self.assertion, method, path)
            return await traced(f"{method} Microsoft Graph", answer, **{"server.address": "graph"})
        except OboError as exc:
            raise self._refused(exc) from None
        except GraphUnavailable:
            raise DownstreamError(
                503, "temporarily_unavailable", "Microsoft Graph could not serve the request.", self.correlation_id
            ) from None

    def _refused(self, exc: OboError) -> DownstreamError:
        # What the caller hears is the token service's refusal mapped by zerotrust.onbehalf: consent missing
        # for this app (403), the user's sign-in gone (401), or the service down (503).
        log.warning("on-behalf-of failed (%s) correlation_id=%s", exc, self.correlation_id)
        if exc.claims is not None:
            # zt: secure-with-cae
            # A fresh sign-in is needed: nothing held for this user may be used again, and the caller
            # hears a challenge of this tier's own, with the claims only if it declared cp1.
            self.downstream.obo.forget(self.principal)
        told = for_caller(exc, self.principal.xms_cc)
        return DownstreamError(told.status, told.error, told.description, self.correlation_id, told.claims)


@dataclass
class AppHop:
    """One app-only request's calls to downstream-api, with the api's own token (client credentials).

    # zt: developer-strategy-application-permissions
    Only for app-only callers (the daemon, the provisioning service): built for a user's request
    it refuses, so a user's call can never reach downstream-api with the application's rights. The
    token is asked for in the caller's tenant, so downstream-api's tenant filter is the caller's.
    """

    downstream: Downstream
    caller: Principal
    correlation_id: str

    def __post_init__(self) -> None:
        if not self.caller.is_app_only:
            raise RuntimeError("app-only calls downstream are for app-only callers; a user's request goes on-behalf-of")

    async def call(self, method: str, path: str, *, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        client = self.downstream.app_only
        if client is None:
            raise DownstreamError(
                503, "temporarily_unavailable", "App-only calls are not configured.", self.correlation_id
            )
        try:
            token = await client.token(self.caller.tid, f"{self.downstream.scope_base}/.default")
        except AppOnlyFailure as exc:
            log.warning("client credentials failed (%s) correlation_id=%s", exc, self.correlation_id)
            raise DownstreamError(503, "temporarily_unavailable", exc.description, self.correlation_id) from None
        return await self.downstream.send(method, path, token, self.correlation_id, body)
