"""The authorization matrix: every route of both APIs, attacked the same ways over HTTPS.

# zt: developer-strategy-authorization-best-practices, zt: developer-strategy-delegated-permission
Rows come from table.py; a route the apps serve without a row fails the first test. Each attack
means the same thing for every row of a token type: delegated rows act for a signed-in user (and
another user's object must be invisible), app-only rows act for an application in its tenant
(and a user's token, or another tenant's application, must get nothing).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from api.main import create_app as create_api
from api.settings import Settings as ApiSettings
from downstream_api.main import create_app as create_downstream
from downstream_api.settings import Settings as DownstreamSettings
from fastapi.routing import APIRoute, iter_route_contexts
from zerotrust.cae import challenged_claims
from zerotrust.docs import PUBLIC_PATHS as DOCS_PATHS

from tests.authz.chain import ALICE, BOB, CONTOSO, FABRIKAM, Chain, Person
from tests.authz.table import ALL_ROLES, APP_ONLY, DELEGATED, ROUTES, Body, MassAssignment, Route

pytestmark = [
    pytest.mark.guidance("developer-strategy-authorization-best-practices"),
    pytest.mark.guidance("developer-strategy-delegated-permission"),
]

PUBLIC = {"/healthz", *DOCS_PATHS}
ROLE_DENIED = "The signed-in user is not assigned an app role this operation needs."
SCOPE_DENIED = "The token does not grant this operation."


def _served() -> set[tuple[str, str, str]]:
    served = set()
    for service, app in (
        ("api", create_api(ApiSettings())),
        ("downstream-api", create_downstream(DownstreamSettings())),
    ):
        for route in iter_route_contexts(app.routes):
            if isinstance(route.original_route, APIRoute) and route.path not in PUBLIC:
                served |= {(service, m, str(route.path_format)) for m in route.methods or ()}
    return served


def test_every_served_route_has_a_row_and_every_row_a_route() -> None:
    table = {(r.service, r.method, r.path) for r in ROUTES}
    served = _served()
    assert served - table == set(), f"routes without a row in tests/authz/table.py: {sorted(served - table)}"
    assert table - served == set(), f"rows for routes nobody serves: {sorted(table - served)}"
    assert len(table) == len(ROUTES), "a route has two rows"


# -- tokens and objects, per token type ------------------------------------------------------------


def _user(chain: Chain, route: Route, person: Person, scp: str | None = None, **extra: Any) -> str:
    """`person`'s delegated token for the row's service; a step-up row's names its contexts, from a cp1 client."""
    if route.contexts:
        extra = {"acrs": list(route.contexts), "xms_cc": ["cp1"], **extra}
    return chain.user_token(route.service, person, scp, **extra)


def _token(chain: Chain, route: Route, permission: str) -> str:
    """A token of the row's type holding `permission` (a scope, or an app role); a user-role row's
    token is bob's, who is assigned the role."""
    if route.token == "app-only":
        return chain.app_token(route.service, [permission])
    if route.user_roles:
        return _user(chain, route, BOB, permission, roles=list(route.user_roles))
    return _user(chain, route, ALICE, permission)


def _owner(chain: Chain, route: Route) -> str:
    """Who makes the row's objects: alice with the write scope, or the application with the row's role."""
    if route.token == "app-only":
        return chain.app_token(route.service, list(route.accepts))
    return _user(chain, route, ALICE)


def _call(chain: Chain, route: Route, path: str, token: str, body: Any) -> httpx.Response:
    return chain.call(route.service, route.method, path, token, body, route.media_type)


def _create(chain: Chain, route: Route, token: str) -> Body:
    store = route.store
    r = chain.call(route.service, "POST", store.path, token, store.new(), store.media_type)
    assert r.status_code == 201, r.text
    created: Body = r.json()
    assert uuid.UUID(created["id"]).version == 4
    return created


def _target(chain: Chain, route: Route, owner_token: str | None = None) -> tuple[str, Body | None]:
    """The route's path and the object it names: a fresh one, made by its owner."""
    if route.object_param is None:
        return route.path, None
    obj = _create(chain, route, owner_token or _owner(chain, route))
    return route.path.replace("{" + route.object_param + "}", obj["id"]), obj


def _listing(chain: Chain, route: Route, token: str) -> Any:
    r = chain.call(route.service, "GET", route.store.path, token)
    assert r.status_code == 200, r.text
    return r.json()


def _challenge(chain: Chain, route: Route, needed: tuple[str, ...], description: str = SCOPE_DENIED) -> str:
    realm = chain.apis[route.service].realm
    return (
        f'Bearer realm="{realm}", error="insufficient_scope", '
        f'error_description="{description}", scope="{" ".join(needed)}"'
    )


def _assert_insufficient(r: httpx.Response, challenge: str) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["www-authenticate"] == challenge
    assert r.json()["error"] == "insufficient_scope"


# -- right and wrong permission ------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_right_permission_succeeds_with_each_accepted_one(chain: Chain, route: Route) -> None:
    for permission in route.accepts:
        path, obj = _target(chain, route)
        r = _call(chain, route, path, _token(chain, route, permission), route.body_for(obj))
        assert r.status_code == route.ok, (permission, r.text)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_wrong_permission_is_403_insufficient_scope(chain: Chain, route: Route) -> None:
    path, obj = _target(chain, route)
    if route.token == "app-only":
        token = chain.app_token(route.service, list(route.wrong))
    else:
        # Every role the user could hold, but none of the scopes this route accepts.
        token = _user(chain, route, BOB, " ".join(route.wrong), roles=ALL_ROLES)
    r = _call(chain, route, path, token, route.body_for(obj))
    _assert_insufficient(r, _challenge(chain, route, route.accepts))


@pytest.mark.parametrize("route", [r for r in ROUTES if r.user_roles], ids=lambda r: r.id)
def test_a_scope_without_the_user_role_is_403_naming_the_role(chain: Chain, route: Route) -> None:
    """alice holds the scope (the app may act for her) but not the role (she may not do this)."""
    for scope in route.accepts:
        for token in (
            _user(chain, route, ALICE, scope),
            # bob without his role in this token: the token decides, not who he is elsewhere.
            _user(chain, route, BOB, scope),
            # A role the other API defines, or a role named like the scope, is not this role.
            _user(chain, route, BOB, scope, roles=[r for r in ALL_ROLES if r not in route.user_roles]),
        ):
            r = _call(chain, route, route.path, token, None)
            _assert_insufficient(r, _challenge(chain, route, route.user_roles, ROLE_DENIED))


# -- step-up ------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", [r for r in ROUTES if r.contexts], ids=lambda r: r.id)
def test_a_step_up_route_without_its_context_is_challenged_and_changes_nothing(chain: Chain, route: Route) -> None:
    """The right permission is not enough here: a cp1 token naming no context, or another one, gets a claims
    challenge asking for the row's; a token from a client that can't answer one gets 403."""
    owner = _owner(chain, route)
    path, obj = _target(chain, route, owner)
    person, roles = (BOB, {"roles": list(route.user_roles)}) if route.user_roles else (ALICE, {})
    before = _listing(chain, route, owner)
    realm = chain.apis[route.service].realm
    for acrs in ([], ["c2"]):
        token = chain.user_token(route.service, person, route.accepts[-1], acrs=acrs, xms_cc=["cp1"], **roles)
        r = _call(chain, route, path, token, route.body_for(obj))
        assert r.status_code == 401, r.text
        header = r.headers["www-authenticate"]
        assert header.startswith(f'Bearer realm="{realm}", error="insufficient_claims"'), header
        assert json.loads(str(challenged_claims(header))) == {
            "access_token": {"acrs": {"essential": True, "value": route.contexts[0]}}
        }
    token = chain.user_token(route.service, person, route.accepts[-1], acrs=[], **roles)
    r = _call(chain, route, path, token, route.body_for(obj))
    assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"], r.text
    assert _listing(chain, route, owner) == before


# -- the wrong token type --------------------------------------------------------------------------


@pytest.mark.parametrize("route", DELEGATED, ids=lambda r: r.id)
def test_an_app_only_token_is_refused_on_a_user_route(chain: Chain, route: Route) -> None:
    path, obj = _target(chain, route)
    # From a client the API takes app-only tokens from, holding roles named like the scopes and
    # every role either API defines: still no user, so no delegated route.
    roles = [*route.accepts, *route.user_roles, *ALL_ROLES]
    r = _call(chain, route, path, chain.app_token(route.service, roles), route.body_for(obj))
    _assert_insufficient(r, _challenge(chain, route, route.accepts))


@pytest.mark.parametrize("route", APP_ONLY, ids=lambda r: r.id)
def test_a_users_token_is_refused_on_an_app_only_route(chain: Chain, route: Route) -> None:
    path, obj = _target(chain, route)
    scopes = " ".join(sorted({p for r in DELEGATED if r.service == route.service for p in r.accepts}))
    # bob, with every scope of the API and a user assignment of roles named like the app roles.
    token = _user(chain, route, BOB, scopes, roles=[*route.accepts, *ALL_ROLES])
    r = _call(chain, route, path, token, route.body_for(obj))
    _assert_insufficient(r, _challenge(chain, route, route.accepts))
    if obj is not None:  # and the object is still there, as it was
        again = chain.call(route.service, "GET", path, _owner(chain, route))
        assert again.status_code == 200 and again.json() == obj


# -- someone else's object, another tenant ---------------------------------------------------------


def _without_correlation(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "correlation_id"}


@pytest.mark.parametrize("route", [r for r in DELEGATED if r.object_param], ids=lambda r: r.id)
def test_another_users_object_is_404_exactly_like_an_unknown_id(chain: Chain, route: Route) -> None:
    alices, obj = _target(chain, route)
    unknown = route.path.replace("{" + str(route.object_param) + "}", str(uuid.uuid4()))
    bob = _user(chain, route, BOB, " ".join(route.accepts))
    hers = _call(chain, route, alices, bob, route.body_for(obj))
    nobodys = _call(chain, route, unknown, bob, route.body_for(obj))
    assert hers.status_code == nobodys.status_code == 404
    assert _without_correlation(hers.json()) == _without_correlation(nobodys.json())
    # And it is still hers, unchanged.
    mine = chain.call(route.service, "GET", alices.removesuffix("/share"), _user(chain, route, ALICE))
    assert mine.status_code == 200 and mine.json()["title"] == "owned by alice" and mine.json()["done"] is False


@pytest.mark.parametrize("route", [r for r in APP_ONLY if r.object_param], ids=lambda r: r.id)
def test_an_app_only_object_is_the_tenants_and_an_unknown_id_is_404(chain: Chain, route: Route) -> None:
    """App-only objects belong to the tenant, not to one app instance: another instance of an allowed
    client sees the object; an id that names nothing (or isn't an id) is 404 and says nothing more."""
    path, obj = _target(chain, route)
    seen = chain.call(route.service, "GET", path, chain.app_token(route.service, list(route.accepts)))
    assert seen.status_code == 200 and seen.json() == obj
    token = chain.app_token(route.service, list(route.accepts))
    answers = [
        _call(
            chain, route, route.path.replace("{" + str(route.object_param) + "}", unknown), token, route.body_for(obj)
        )
        for unknown in (str(uuid.uuid4()), "not-an-id")
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert _without_correlation(answers[0].json()) == _without_correlation(answers[1].json())


@pytest.mark.parametrize("route", DELEGATED, ids=lambda r: r.id)
def test_the_same_object_id_from_another_tenant_is_refused(chain: Chain, route: Route) -> None:
    """alice's oid in a token from fabrikam: another person. Single-tenant mode refuses the token
    (test_account_types covers multi-tenant mode, where the object answers 404)."""
    path, obj = _target(chain, route)
    roles = {"roles": list(route.user_roles)} if route.user_roles else {}
    person = ALICE.__class__(**{**ALICE.__dict__, "tid": FABRIKAM})
    token = _user(chain, route, person, " ".join(route.accepts), **roles)
    r = _call(chain, route, path, token, route.body_for(obj))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert CONTOSO not in r.text


@pytest.mark.parametrize("route", APP_ONLY, ids=lambda r: r.id)
def test_another_tenants_app_token_is_refused_and_sees_nothing_of_contosos(chain: Chain, route: Route) -> None:
    """The same client, the same role, consented in fabrikam: single-tenant mode refuses the token
    outright (401), on a contoso object's path too, and nothing of contoso's is in the answer."""
    path, obj = _target(chain, route)
    r = _call(
        chain, route, path, chain.app_token(route.service, list(route.accepts), tid=FABRIKAM), route.body_for(obj)
    )
    assert r.status_code == 401, r.text
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert CONTOSO not in r.text
    if obj is not None:
        assert obj["id"] not in r.text
        again = chain.call(route.service, "GET", path, _owner(chain, route))
        assert again.status_code == 200 and again.json() == obj


# -- mass assignment ------------------------------------------------------------------------------


def _mass_cases() -> list[Any]:
    return [
        pytest.param(route, mass, name, id=f"{route.id} {name}")
        for route in ROUTES
        for mass in route.mass_assignments
        for name in sorted(mass.fields)
    ]


@pytest.mark.parametrize(("route", "mass", "name"), _mass_cases())
def test_mass_assignment_is_refused_and_changes_nothing(
    chain: Chain, route: Route, mass: MassAssignment, name: str
) -> None:
    owner = _owner(chain, route)
    path, obj = _target(chain, route, owner)
    before = _listing(chain, route, owner)
    good = route.body_for(obj)
    assert good is not None
    r = _call(chain, route, path, owner, mass.into(good, name, mass.fields[name]))
    assert r.status_code == mass.refusal.status, r.text
    assert r.json()[mass.refusal.key] == mass.refusal.value
    assert _listing(chain, route, owner) == before


@pytest.mark.parametrize("service", ["api", "downstream-api"])
def test_ids_are_random_uuid4_that_say_nothing(chain: Chain, service: str) -> None:
    route = next(r for r in DELEGATED if r.service == service and r.object_param)
    alice = chain.user_token(service, ALICE)
    ids = [_create(chain, route, alice)["id"] for _ in range(3)]
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    assert len({i[:8] for i in ids}) == 3  # no shared prefix from a clock or a counter
