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
from zerotrust.onbehalf import OboFailure, OnBehalfOf
from zerotrust.principal import Principal

log = logging.getLogger("api.downstream")


@dataclass
class DownstreamError(Exception):
    """The downstream tier (or the token service) could not serve this; mapped to a clean answer."""

    status: int
    error: str
    description: str
    correlation_id: str

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description, "correlation_id": self.correlation_id}


class Downstream:  # zt: api-calls-api
    def __init__(self, session: aiohttp.ClientSession, obo: OnBehalfOf, scope_base: str) -> None:
        self.session = session
        self.obo = obo
        self.scope_base = scope_base

    def on_behalf_of(self, principal: Principal, assertion: str, correlation_id: str) -> Hop:
        return Hop(self, principal, assertion, correlation_id)


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
    ) -> tuple[int, Any]:
        correlation_id = self.correlation_id
        value = scope_value or ("Records.ReadWrite" if write else "Records.Read")
        scope = f"{self.downstream.scope_base}/{value}"
        try:
            token = await self.downstream.obo.token(self.principal, self.assertion, [scope])
        except OboFailure as exc:
            log.warning("on-behalf-of failed (%s) correlation_id=%s", exc, correlation_id)
            if {65001, 90094} & set(exc.error_codes):
                # zt: permissions-require-admin-consent - the api itself lacks the grant for this
                # downstream scope (admin consent withdrawn, or never given): nothing the user can fix.
                raise DownstreamError(
                    403,
                    "consent_required",
                    "An administrator has not granted the api this permission on downstream-api.",
                    correlation_id,
                ) from None
            if exc.error in ("invalid_grant", "interaction_required"):
                raise DownstreamError(
                    401, "invalid_token", "Your sign-in is no longer valid; sign in again.", correlation_id
                ) from None
            raise DownstreamError(
                503, "temporarily_unavailable", "The token service refused or failed.", correlation_id
            ) from None
        except (OSError, ValueError) as exc:  # MSAL raises these when the provider is unreachable
            log.warning("token service unreachable: %r correlation_id=%s", exc, correlation_id)
            raise DownstreamError(
                503, "temporarily_unavailable", "The token service can't be reached.", correlation_id
            ) from None
        headers = {"Authorization": f"Bearer {token}", "X-Correlation-Id": correlation_id}
        try:
            async with self.downstream.session.request(method, path, json=body, headers=headers) as response:
                text = await response.text()
                status = response.status
                bearer_refusal = "WWW-Authenticate" in response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("downstream-api unreachable: %r correlation_id=%s", exc, correlation_id)
            raise DownstreamError(
                503, "temporarily_unavailable", "downstream-api can't be reached.", correlation_id
            ) from None
        # A 403 without a bearer challenge is downstream's decision about the user (e.g. sharing with
        # a group they are not in): theirs to hear as is.
        if status >= 500 or status == 401 or (status == 403 and bearer_refusal):
            # A 401/403 from downstream means this tier's token was wrong, not the caller's: 502.
            log.warning("downstream-api answered %s correlation_id=%s", status, correlation_id)
            raise DownstreamError(
                502 if status < 500 else 503,
                "bad_gateway" if status < 500 else "temporarily_unavailable",
                "downstream-api could not serve the request.",
                correlation_id,
            )
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            raise DownstreamError(
                502, "bad_gateway", "downstream-api sent an unreadable answer.", correlation_id
            ) from None
