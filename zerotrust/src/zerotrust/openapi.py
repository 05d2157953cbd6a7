"""What each route needs, written into the OpenAPI schema: so /docs shows it, and tests can read it.

The `bearerAuth` scheme (protect.BEARER_SCHEME) is declared here, not run as a dependency of every
request; `document_permissions` lists on each operation what the route's permission checks
(Protection.scopes / app_roles / user_roles) accept:

    security: [{bearerAuth: [Tasks.Read]}, {bearerAuth: [Tasks.ReadWrite]}]   # either one is enough
    x-token-type: delegated                                                  # or app-only

OpenAPI reads the entries of `security` as alternatives, and the names inside one entry as all
required (OpenAPI 3.1 allows role names for schemes other than OAuth 2.0). FastAPI's own
`Security(dependency, scopes=[...])` merges every scope a route mentions into one entry, which
would say "all of these" for checks that accept any one, and would list the read scope on a write
route whose downstream hop also runs the read check. Here the entries are worked out from the
checks: a token passes a route when it passes every check on it.

A dependency that reads query parameters from the request itself (paging.page_of: cheaper than FastAPI's
declared ones) names them with `reads_query`, and each route using it lists them as FastAPI would have.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from .protect import BEARER_SCHEME, Permission, permissions_of

# The operation extension naming the token type a route needs: "delegated" or "app-only".
TYPE_EXTENSION = "x-token-type"
# The query parameters a dependency reads itself: OpenAPI parameter objects (name, description, schema).
_QUERY: weakref.WeakKeyDictionary[Callable[..., Any], tuple[dict[str, Any], ...]] = weakref.WeakKeyDictionary()


def reads_query(call: Callable[..., Any], *parameters: dict[str, Any]) -> None:
    """`call`, a dependency, reads these optional query parameters from the request: the schema lists them."""
    _QUERY[call] = tuple({"name": p["name"], "in": "query", "required": False, **p} for p in parameters)


def _query_parameters(dependant: Dependant) -> Iterator[dict[str, Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None and sub.call in _QUERY:
            yield from _QUERY[sub.call]
        yield from _query_parameters(sub)


def add_query_parameters(schema: dict[str, Any], routes: list[BaseRoute]) -> None:
    """Write into `schema` the query parameters each operation's dependencies read themselves."""
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        parameters = list(_query_parameters(route.dependant))
        for method in sorted(route.methods or ()) if parameters else ():
            operation = paths.get(route.path_format or route.path or "", {}).get(method.lower())
            if operation is None:
                continue
            listed = operation.setdefault("parameters", [])
            named = {(p.get("name"), p.get("in")) for p in listed}
            listed += [dict(p) for p in parameters if (p["name"], "query") not in named]


def _checks(dependant: Dependant) -> Iterator[Permission]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield from permissions_of(sub.call)
        yield from _checks(sub)


def route_permissions(dependant: Dependant) -> list[Permission]:
    """Every permission check a route runs (directly or through its dependencies), once each."""
    found: list[Permission] = []
    for permission in _checks(dependant):
        if permission not in found:
            found.append(permission)
    return found


def accepted(permissions: list[Permission]) -> tuple[Literal["delegated", "app-only"], list[tuple[str, ...]]]:
    """The token type a route needs and the smallest sets of names that pass all its checks.

    Each check wants any one of its names, so a set passes when it holds one name of every check.
    """
    token_types = {p.token_type for p in permissions}
    if len(token_types) != 1:
        raise ValueError(f"no token can pass checks that want both delegated and app-only tokens: {permissions}")
    passing = {frozenset(names) for names in itertools.product(*(p.any_of for p in permissions))}
    smallest = sorted(tuple(sorted(s)) for s in passing if not any(other < s for other in passing))
    if not smallest:
        raise ValueError(f"a check names no scope or role, so no token can pass: {permissions}")
    return token_types.pop(), smallest


def describe(kind: str, alternatives: list[tuple[str, ...]]) -> str:
    """One line for the operation's description, e.g. "Needs a delegated token ... `Tasks.Read` or ..."."""
    if kind == "delegated":
        who, what = "a delegated token (a signed-in user, through an allowed client app)", "scope"
    else:
        who, what = "an app-only token (an allowed client app, no user)", "app role"
    names = " or ".join(" and ".join(f"`{n}`" for n in alternative) for alternative in alternatives)
    return f"**Needs** {who} with the {what} {names}."


_CHALLENGE = {"WWW-Authenticate": {"description": "The RFC 6750 challenge.", "schema": {"type": "string"}}}
_RESPONSES = {
    "401": {
        "description": "No token, or a token this API does not accept (bad signature, wrong audience, "
        'issuer or calling app, expired...): `error="invalid_token"`, or no error when no token came.',
        "headers": _CHALLENGE,
    },
    "403": {
        "description": 'A valid token without any accepted scope or role: `error="insufficient_scope"`, '
        "`scope` names what is needed.",
        "headers": _CHALLENGE,
    },
}


def add_permissions(schema: dict[str, Any], routes: list[BaseRoute]) -> None:
    """Write into `schema` (FastAPI's, for these routes) what each operation's checks accept."""
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    scheme = BEARER_SCHEME.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        permissions = route_permissions(route.dependant)
        if not permissions:
            continue
        token_type, alternatives = accepted(permissions)
        path = route.path_format or route.path or ""
        for method in sorted(route.methods or ()):
            operation = paths.get(path, {}).get(method.lower())
            if operation is None:  # not in the schema (include_in_schema=False)
                continue
            operation["security"] = [{BEARER_SCHEME.scheme_name: list(names)} for names in alternatives]
            schema.setdefault("components", {}).setdefault("securitySchemes", {})[BEARER_SCHEME.scheme_name] = scheme
            operation[TYPE_EXTENSION] = token_type
            needs = describe(token_type, alternatives)
            user_roles = sorted({name for p in permissions if p.user_roles for name in p.any_of})
            if user_roles:
                needs += (
                    " Of these, "
                    + " or ".join(f"`{r}`" for r in user_roles)
                    + (" is an app role the signed-in user must be assigned.")
                )
            operation["description"] = (
                f"{operation['description']}\n\n{needs}" if operation.get("description") else needs
            )
            responses = operation.setdefault("responses", {})
            for status, response in _RESPONSES.items():
                responses.setdefault(status, response)


# zt: protected-api-example
def document_permissions(app: FastAPI) -> None:
    """Make `app.openapi()` (and so /openapi.json and /docs, where served) list what each route needs."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        # FastAPI builds the schema again when routes change; each new one is annotated once.
        schema = generate()
        if not documented or documented[0] is not schema:
            add_permissions(schema, app.routes)
            add_query_parameters(schema, app.routes)
            documented[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
