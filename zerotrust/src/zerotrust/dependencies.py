"""FastAPI dependencies that put the validation and the per-route permission checks on each route.

    @router.get("/tasks")
    async def list_tasks(user: Annotated[Principal, Depends(require_scopes("Tasks.Read", "Tasks.ReadWrite"))]): ...

Deny by default: a route without one of these dependencies is public, so routers add one to
every route; the services' tests enumerate routes to make sure none is left open by accident.

Each check also says what it accepts (`permission_of`), so the OpenAPI schema can list, per
operation, the token type and the scopes or app roles that route needs (see openapi.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import insufficient_scope, invalid_request, missing_credentials, missing_role
from .principal import Principal
from .validation import TokenValidator

# The OpenAPI security scheme of every protected route, `bearerAuth`: an access token in the
# Authorization header. It only documents: with auto_error off it never answers a request itself,
# and bearer_token below reads and checks the header exactly as it would without it.
BEARER_SCHEME = HTTPBearer(
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="An access token minted for this API by the identity provider (Microsoft Entra ID "
    "or the local emulator), sent as `Authorization: Bearer <token>`. Each operation lists what it "
    "accepts, one entry per alternative: scopes for delegated tokens, app roles for app-only ones.",
    auto_error=False,
)
DocumentedBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)]


def bearer_token(request: Request, _documented: DocumentedBearer) -> str:
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


@dataclass(frozen=True)
class Permission:
    """What one permission check accepts: a token of this type holding at least one of `any_of`
    (scopes for delegated tokens, app roles for app-only tokens; with `user_roles`, app roles
    assigned to the signed-in user of a delegated token)."""

    token_type: Literal["delegated", "app-only"]
    any_of: tuple[str, ...]
    user_roles: bool = False


# Each check made by require_scopes/require_app_roles, and what it accepts (read by openapi.py and
# the tests; the checks themselves never look here).
_PERMISSIONS: weakref.WeakKeyDictionary[Callable[..., Any], Permission] = weakref.WeakKeyDictionary()


def permission_of(call: Callable[..., Any]) -> Permission | None:
    """The permission a dependency checks, if it is one made by require_scopes/require_app_roles."""
    try:
        return _PERMISSIONS.get(call)
    except TypeError:  # not weak-referenceable, so not one of ours
        return None


def _record_use(request: Request, any_of: tuple[str, ...], held: frozenset[str] | set[str]) -> None:
    # zt: overprivileged-permissions - the permission that let this request through, for the audit
    # log: the first one held, in the order the route lists them (least privileged first), so a
    # token holding read and write that only ever reads shows its write permission as unused.
    used = next(name for name in any_of if name in held)
    satisfied: list[str] = getattr(request.state, "permissions_used", [])
    if used not in satisfied:
        satisfied.append(used)
    request.state.permissions_used = satisfied


def require_scopes(*any_of: str) -> Callable[..., Awaitable[Principal]]:
    """A delegated (user) token holding at least one of these scopes."""

    async def check(
        request: Request, principal: CurrentPrincipal
    ) -> Principal:  # zt: developer-strategy-delegated-permission
        if principal.is_app_only or not (principal.scopes & set(any_of)):
            raise insufficient_scope(*any_of)
        _record_use(request, any_of, principal.scopes)
        return principal

    _PERMISSIONS[check] = Permission("delegated", any_of)
    return check


def require_app_roles(*any_of: str) -> Callable[..., Awaitable[Principal]]:
    """An app-only token (no user) granted at least one of these app roles."""

    async def check(
        request: Request, principal: CurrentPrincipal
    ) -> Principal:  # zt: developer-strategy-application-permissions
        # A user's token is refused here even if the user was assigned a role of the same name:
        # app-only routes act for a whole tenant, which no signed-in user's request may do.
        if not principal.is_app_only or not (set(principal.roles) & set(any_of)):
            raise insufficient_scope(*any_of)
        _record_use(request, any_of, set(principal.roles))
        return principal

    _PERMISSIONS[check] = Permission("app-only", any_of)
    return check


def require_user_roles(scopes: tuple[str, ...], roles: tuple[str, ...]) -> Callable[[Principal], Awaitable[Principal]]:
    """A delegated token holding one of `scopes`, for a user assigned one of the app roles `roles`.

    Both are needed: the scope says the calling app may act for the user here, the role says the
    user may do this at all. A role alone (no scope) would let any app the user signs in to use it.
    """
    scope_check = require_scopes(*scopes)

    # A default, not Annotated: the annotation would be a string naming a local (postponed annotations).
    async def check(
        principal: Principal = Depends(scope_check),
    ) -> Principal:  # zt: configure-tokens-group-claims-app-roles
        # `roles` of a delegated token: the app roles an administrator assigned this user on this
        # API (Entra puts them there); never taken from groups or names, never from the request.
        if not set(principal.roles) & set(roles):
            raise missing_role(*roles)
        return principal

    _PERMISSIONS[check] = Permission("delegated", roles, user_roles=True)
    return check
