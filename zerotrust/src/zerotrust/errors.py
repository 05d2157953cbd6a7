"""Bearer-token errors as RFC 6750 section 3 defines them, with the WWW-Authenticate header.

401 without an error code when no credentials came; 401 invalid_token for a bad token; 403
insufficient_scope naming what is needed; 400 invalid_request for a malformed request. The
description is short and reveals nothing an attacker could use (never which key, never a claim).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


class BearerError(Exception):
    def __init__(
        self,
        status: int,
        error: str | None,
        description: str | None = None,
        *,
        scope: str | None = None,
        realm: str = "",
    ) -> None:
        self.status = status
        self.error = error
        self.description = description
        self.scope = scope
        self.realm = realm
        super().__init__(description or error or "unauthorized")

    def www_authenticate(self, realm: str) -> str:
        parts = [f'realm="{self.realm or realm}"']
        if self.error:
            parts.append(f'error="{self.error}"')
        if self.description:
            parts.append(f'error_description="{self.description}"')
        if self.scope:
            parts.append(f'scope="{self.scope}"')
        return "Bearer " + ", ".join(parts)


def missing_credentials() -> BearerError:
    return BearerError(401, None, None)


def invalid_token(description: str = "The access token is invalid.") -> BearerError:
    return BearerError(401, "invalid_token", description)


def insufficient_scope(*needed: str) -> BearerError:
    return BearerError(403, "insufficient_scope", "The token does not grant this operation.", scope=" ".join(needed))


def missing_role(*needed: str) -> BearerError:
    # Still insufficient_scope (RFC 6750 has no other code for "valid token, not enough"), naming the role.
    return BearerError(
        403,
        "insufficient_scope",
        "The signed-in user is not assigned an app role this operation needs.",
        scope=" ".join(needed),
    )


def invalid_request(description: str) -> BearerError:
    return BearerError(400, "invalid_request", description)


def bearer_error_handler(realm: str):  # type: ignore[no-untyped-def]
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BearerError)
        body = {"error": exc.error or "unauthorized", "error_description": exc.description or "Sign-in required."}
        return JSONResponse(
            body,
            status_code=exc.status,
            headers={"WWW-Authenticate": exc.www_authenticate(realm), "Cache-Control": "no-store"},
        )

    return handle


async def provider_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    # The caller's token may be fine; we just can't check it yet. 503 tells clients to retry.
    return JSONResponse(
        {
            "error": "temporarily_unavailable",
            "error_description": "The identity provider can't be reached to validate tokens.",
        },
        status_code=503,
        headers={"Retry-After": "5", "Cache-Control": "no-store"},
    )
