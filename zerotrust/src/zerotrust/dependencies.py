"""FastAPI dependencies that put the validation and the per-route permission checks on each route.

    @router.get("/tasks")
    async def list_tasks(user: Annotated[Principal, Depends(require_scopes("Tasks.Read", "Tasks.ReadWrite"))]): ...

Deny by default: a route without one of these dependencies is public, so routers add one to
every route; the services' tests enumerate routes to make sure none is left open by accident.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from .errors import insufficient_scope, invalid_request, missing_credentials
from .principal import Principal
from .validation import TokenValidator


def bearer_token(request: Request) -> str:
    """The bearer token from the Authorization header (RFC 6750 2.1), and only from there."""
    header = request.headers.get("authorization")
    if header is None:
        raise missing_credentials()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        raise missing_credentials()
    token = token.strip()
    if not token or " " in token or len(request.headers.getlist("authorization")) > 1:
        raise invalid_request("Send exactly one bearer token in the Authorization header.")
    return token


BearerToken = Annotated[str, Depends(bearer_token)]


async def current_principal(request: Request, token: BearerToken) -> Principal:  # zt: protect-api
    validator: TokenValidator = request.app.state.validator
    principal = await validator.validate(token)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_scopes(*any_of: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A delegated (user) token holding at least one of these scopes."""

    async def check(principal: CurrentPrincipal) -> Principal:  # zt: developer-strategy-delegated-permission
        if principal.is_app_only or not (principal.scopes & set(any_of)):
            raise insufficient_scope(*any_of)
        return principal

    return check


def require_app_roles(*any_of: str) -> Callable[[Principal], Awaitable[Principal]]:
    """An app-only token (no user) granted at least one of these app roles."""

    async def check(principal: CurrentPrincipal) -> Principal:  # zt: developer-strategy-application-permissions
        if not principal.is_app_only or not (set(principal.roles) & set(any_of)):
            raise insufficient_scope(*any_of)
        return principal

    return check
