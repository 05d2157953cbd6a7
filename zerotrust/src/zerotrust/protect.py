"""Protecting a FastAPI API: the bearer token validated on every route that asks, and a permission per route.

    protect = Protection(get_validator, realm="api")   # get_validator(request): awaits to a TokenValidator
    Reader = Annotated[Principal, Depends(protect.scopes("Tasks.Read", "Tasks.ReadWrite"))]

    @app.get("/tasks")
    async def list_tasks(user: Reader): ...

Deny by default: a route without one of these checks is public (routecheck.py lists such routes, so a
test can insist there are none). Refusals are RFC 6750 answers (status and WWW-Authenticate): 401 with
no error code when no credentials came, 401 invalid_token for a bad token, 403 insufficient_scope naming
what is needed, 400 invalid_request for a malformed header; and 429 with Retry-After for a caller over a
per-caller rate limit, where the app installed one. They are HTTPExceptions, so they stay right even where
`install` was not called; `install` gives them the RFC 6750 JSON body.
"""

# region liftable: protect-fastapi-api (3 of 3) requires: fastapi
# No `from __future__ import annotations`: FastAPI reads these closures' annotations at runtime.
import base64
import json
import math
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from .keyset import ProviderUnavailable
from .tokens import InvalidToken, Principal, TokenValidator

Check = Callable[[Request], Awaitable[Principal]]

# Documents the scheme in OpenAPI; with auto_error off it never answers a request itself.
BEARER_SCHEME = HTTPBearer(
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="An access token minted for this API by the identity provider (Microsoft Entra ID or the "
    "local emulator), sent as `Authorization: Bearer <token>`. Each operation lists what it accepts, one "
    "entry per alternative: scopes for delegated tokens, app roles for app-only ones.",
    auto_error=False,
)


class OAuthError(HTTPException):
    """An answer with an OAuth error code; `install` renders it as `{"error", "error_description"}`."""

    def __init__(self, status: int, error: str, description: str, headers: dict[str, str]) -> None:
        super().__init__(status, description, {**headers, "Cache-Control": "no-store"})
        self.error = error


def www_authenticate(
    realm: str, error: str | None, description: str | None = None, scope: str = "", claims: str | None = None
) -> str:
    """An RFC 6750 Bearer challenge."""
    challenge = [f'realm="{realm}"']
    challenge += [f'error="{error}"'] if error else []
    challenge += [f'error_description="{description}"'] if description else []
    challenge += [f'scope="{scope}"'] if scope else []
    # zt: secure-with-cae
    # A claims challenge (error="insufficient_claims"): the claims request, base64 as Entra sends it.
    challenge += [f'claims="{base64.b64encode(claims.encode()).decode()}"'] if claims else []
    return "Bearer " + ", ".join(challenge)


class BearerError(OAuthError):
    """An RFC 6750 refusal; the description is short and reveals nothing an attacker could use."""

    def __init__(
        self,
        status: int,
        realm: str,
        error: str | None,
        description: str | None = None,
        scope: str = "",
        claims: str | None = None,
    ):
        headers = {"WWW-Authenticate": www_authenticate(realm, error, description, scope, claims)}
        super().__init__(status, error or "unauthorized", description or "Sign-in required.", headers)
        self.required = tuple(scope.split())


@dataclass(frozen=True)
class Permission:
    """What one check accepts: a token of this type holding one of `any_of` (scopes when delegated, app
    roles when app-only; with `user_roles`, app roles assigned to the signed-in user)."""

    token_type: Literal["delegated", "app-only"]
    any_of: tuple[str, ...]
    user_roles: bool = False


# The checks made here and what each accepts (its own, then those of the checks it runs), for the OpenAPI
# schema and the tests (never for deciding).
_PERMISSIONS: weakref.WeakKeyDictionary[Callable[..., Any], tuple[Permission, ...]] = weakref.WeakKeyDictionary()


def permissions_of(call: Callable[..., Any]) -> tuple[Permission, ...]:
    try:
        return _PERMISSIONS.get(call, ())
    except TypeError:  # not weak-referenceable, so not one of ours
        return ()


def runs_check(outer: Callable[..., Any], check: Check, *own: Permission) -> None:
    """`outer` calls `check` itself, not as a dependency: it accepts what `check` does (schema, routecheck)."""
    _PERMISSIONS[outer] = (*own, *permissions_of(check))


# region quote: record-use
def _record_use(request: Request, any_of: tuple[str, ...], held: frozenset[str] | set[str]) -> None:
    # zt: overprivileged-permissions
    # The permission that let this request through, for the audit log: the first one held, in the
    # route's order (least privileged first), so a write permission only ever used to read shows unused.
    # What the route would have accepted goes beside it, so the report can tell "needed" from "held but
    # more than this call needed" (a narrower permission listed before it would have done).
    used = next(name for name in any_of if name in held)
    satisfied: list[str] = getattr(request.state, "permissions_used", [])
    if used not in satisfied:
        satisfied.append(used)
    request.state.permissions_used = satisfied
    accepted: dict[str, list[str]] = getattr(request.state, "permissions_accepted", {})
    accepted.setdefault(used, list(any_of))
    request.state.permissions_accepted = accepted


# endregion


class Protection:
    """The checks of one API; `validator(request)` gives the TokenValidator the app's lifespan built. Each check
    is one dependency taking the request alone and calls what it needs itself: under load FastAPI spends tens
    of microseconds per dependency node, so a route pays one per need (tests/perf/test_request_path.py)."""

    def __init__(self, validator: Callable[[Request], Awaitable[TokenValidator]], realm: str) -> None:
        self.realm = realm

        def read_bearer(request: Request) -> str:
            """The token from the Authorization header (RFC 6750 2.1), and only from there."""
            scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
            if scheme.lower() != "bearer":
                raise BearerError(401, realm, None)
            token = token.strip()
            if not token or " " in token or len(request.headers.getlist("authorization")) > 1:
                raise BearerError(
                    400, realm, "invalid_request", "Send exactly one bearer token in the Authorization header."
                )
            return token

        # BEARER_SCHEME is documented by openapi.py, not run as a dependency: ~12 us a request saved.
        async def bearer_token(request: Request) -> str:
            return read_bearer(request)

        # zt: protect-api
        # region quote: principal
        async def principal(request: Request) -> Principal:
            # Once per request, whichever check asks first (the caller's rate limit counts a request once).
            known = getattr(request.state, "principal", None)
            if isinstance(known, Principal):
                return known
            token = read_bearer(request)
            tokens = await validator(request)
            try:
                found = await tokens.validate(token)
            except InvalidToken as exc:
                raise BearerError(401, realm, "invalid_token", exc.description) from None
            except ProviderUnavailable:
                # The caller's token may be fine; it can't be checked yet. 503 tells clients to retry.
                why = "The identity provider can't be reached to validate tokens."
                raise OAuthError(503, "temporarily_unavailable", why, {"Retry-After": "5"}) from None
            request.state.principal = found
            # endregion
            # zt: protect-api
            # A per-caller rate limit, where the app installed one (zerotrust.limits leaves it in the request's
            # state): given the validated caller, it answers how long they must wait, 0 to go on.
            limit = getattr(request.state, "caller_limit", None)
            if limit is not None and (wait := limit(found)) > 0:
                seconds = str(max(1, math.ceil(wait)))
                why = f"Too many requests; wait {seconds} s and try again."
                raise OAuthError(429, "too_many_requests", why, {"Retry-After": seconds})
            return found

        self.read_bearer = read_bearer
        self.bearer_token = bearer_token
        self.principal = principal

    def _forbidden(self, any_of: tuple[str, ...], why: str = "The token does not grant this operation.") -> BearerError:
        return BearerError(403, self.realm, "insufficient_scope", why, " ".join(any_of))

    # region quote: scopes-check
    def scopes(self, *any_of: str) -> Check:
        """A delegated (user) token holding at least one of these scopes."""

        # zt: developer-strategy-delegated-permission
        async def check(request: Request) -> Principal:
            principal = await self.principal(request)
            if principal.is_app_only or not principal.scopes & set(any_of):
                raise self._forbidden(any_of)
            _record_use(request, any_of, principal.scopes)
            return principal

        _PERMISSIONS[check] = (Permission("delegated", any_of),)
        return check

    # endregion

    # region quote: app-roles-check
    def app_roles(self, *any_of: str) -> Check:
        """An app-only token (no user) granted at least one of these app roles."""

        # zt: developer-strategy-application-permissions
        async def check(request: Request) -> Principal:
            principal = await self.principal(request)
            # A user assigned a role of the same name is still refused: app-only routes act for a whole tenant.
            if not principal.is_app_only or not set(principal.roles) & set(any_of):
                raise self._forbidden(any_of)
            _record_use(request, any_of, set(principal.roles))
            return principal

        _PERMISSIONS[check] = (Permission("app-only", any_of),)
        return check

    # endregion

    # zt: secure-with-cae
    # region quote: require-context
    def require_context(self, principal: Principal, context: str) -> None:
        """The token names authentication context `context` in `acrs` (Conditional Access met it, e.g. with a
        second factor); else a claims challenge asking for it, to a client that can answer one (cp1)."""
        if context in principal.acrs:
            return
        if any(capability.lower() == "cp1" for capability in principal.xms_cc):
            why = "This operation needs you to confirm it's you (a second factor)."
            raise BearerError(401, self.realm, "insufficient_claims", why, claims=context_request(context))
        # A client that can't answer a challenge can't get the context: asking would be a dead end.
        why = f"This operation needs authentication context {context}, from a client that answers claims challenges."
        raise BearerError(403, self.realm, "insufficient_scope", why)

    # endregion

    def with_context(self, check: Check, context: str) -> Check:
        """`check`, and the token names authentication context `context` (require_context)."""

        async def stepped_up(request: Request) -> Principal:
            principal = await check(request)
            self.require_context(principal, context)
            return principal

        runs_check(stepped_up, check)
        return stepped_up

    # region quote: user-roles-check
    def user_roles(self, scopes: tuple[str, ...], roles: tuple[str, ...]) -> Check:
        """A delegated token holding one of `scopes` (the app may act for the user here), for a user assigned
        one of the app roles `roles` (the user may do this at all): a role alone would serve any app."""

        held = self.scopes(*scopes)

        # zt: configure-tokens-group-claims-app-roles
        async def check(request: Request) -> Principal:
            principal = await held(request)
            # Entra puts the roles an administrator assigned this user on this API in `roles`.
            if not set(principal.roles) & set(roles):
                raise self._forbidden(roles, "The signed-in user is not assigned an app role this operation needs.")
            return principal

        runs_check(check, held, Permission("delegated", roles, user_roles=True))
        return check

    # endregion


def context_request(context: str) -> str:
    """The claims request for authentication context `context`, as Entra reads it."""
    return json.dumps({"access_token": {"acrs": {"essential": True, "value": context}}}, separators=(",", ":"))


async def rfc6750_body(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    # zt: identity-iam-development-best-practices
    # Every refusal is in the audit log (zerotrust.audit reads it from here): the error code and, for a bad
    # token, which check failed (descriptions are this code's own words, never the token's).
    reason = f"{exc.error}: {exc.detail}" if exc.error == "invalid_token" else exc.error
    request.state.audit_refusal = (reason, list(getattr(exc, "required", ())))
    body = {"error": exc.error, "error_description": exc.detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Refusals with the RFC 6750 JSON body (`error`, `error_description`) instead of FastAPI's `detail`."""
    app.add_exception_handler(OAuthError, rfc6750_body)


# endregion liftable: protect-fastapi-api (3 of 3)
