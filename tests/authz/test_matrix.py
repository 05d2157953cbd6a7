"""The authorization matrix: every route of both APIs, attacked the same six ways over HTTPS.

# zt: developer-strategy-authorization-best-practices, zt: developer-strategy-delegated-permission
Rows come from table.py; a route the apps serve without a row fails the first test.
"""

from __future__ import annotations

import uuid

import pytest
from api.main import create_app as create_api
from api.settings import Settings as ApiSettings
from downstream_api.main import create_app as create_downstream
from downstream_api.settings import Settings as DownstreamSettings
from fastapi.routing import APIRoute, iter_route_contexts
from zerotrust.docs import PUBLIC_PATHS as DOCS_PATHS

from tests.authz.chain import ALICE, BOB, CONTOSO, FABRIKAM, Chain
from tests.authz.table import CREATE, MASS_ASSIGNMENT, ROUTES, Route

pytestmark = [
    pytest.mark.guidance("developer-strategy-authorization-best-practices"),
    pytest.mark.guidance("developer-strategy-delegated-permission"),
]

PUBLIC = {"/healthz", *DOCS_PATHS}


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


def _create(chain: Chain, service: str, token: str) -> str:
    r = chain.call(service, "POST", CREATE[service], token, {"title": "owned by alice"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _path(chain: Chain, route: Route, owner_token: str | None = None) -> str:
    """The route's path; an object route names a fresh object of alice's."""
    if route.object_param is None:
        return route.path
    object_id = _create(chain, route.service, owner_token or chain.user_token(route.service, ALICE))
    return route.path.replace("{" + route.object_param + "}", object_id)


def _challenge(route: Route, chain: Chain) -> str:
    realm = chain.apis[route.service].realm
    return (
        f'Bearer realm="{realm}", error="insufficient_scope", '
        f'error_description="The token does not grant this operation.", scope="{" ".join(route.accepts)}"'
    )


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_right_permission_succeeds_with_each_accepted_scope(chain: Chain, route: Route) -> None:
    for scope in route.accepts:
        path = _path(chain, route)
        r = chain.call(route.service, route.method, path, chain.user_token(route.service, ALICE, scope), route.body)
        assert r.status_code == route.ok, (scope, r.text)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_wrong_permission_is_403_insufficient_scope(chain: Chain, route: Route) -> None:
    path = _path(chain, route)
    token = chain.user_token(route.service, ALICE, " ".join(route.wrong))
    r = chain.call(route.service, route.method, path, token, route.body)
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == _challenge(route, chain)
    assert r.json()["error"] == "insufficient_scope"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_an_app_only_token_is_refused_on_a_user_route(chain: Chain, route: Route) -> None:
    path = _path(chain, route)
    # Even holding roles named like the scopes, and every app role the API defines.
    roles = [*route.accepts, "Tasks.Report.All", "Records.Report.All", "Tasks.Admin"]
    r = chain.call(route.service, route.method, path, chain.app_token(route.service, roles), route.body)
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == _challenge(route, chain)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.object_param], ids=lambda r: r.id)
def test_another_users_object_is_404_exactly_like_an_unknown_id(chain: Chain, route: Route) -> None:
    alices = _path(chain, route)
    unknown = route.path.replace("{" + str(route.object_param) + "}", str(uuid.uuid4()))
    bob = chain.user_token(route.service, BOB, " ".join(route.accepts))
    hers = chain.call(route.service, route.method, alices, bob, route.body)
    nobodys = chain.call(route.service, route.method, unknown, bob, route.body)
    assert hers.status_code == nobodys.status_code == 404
    assert {k: v for k, v in hers.json().items() if k != "correlation_id"} == {
        k: v for k, v in nobodys.json().items() if k != "correlation_id"
    }
    # And it is still hers, unchanged.
    mine = chain.call(route.service, "GET", alices.removesuffix("/share"), chain.user_token(route.service, ALICE))
    assert mine.status_code == 200 and mine.json()["title"] == "owned by alice" and mine.json()["done"] is False


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_the_same_object_id_from_another_tenant_is_refused(chain: Chain, route: Route) -> None:
    """alice's oid in a token from fabrikam: another person. Single-tenant mode refuses the token
    (test_account_types covers multi-tenant mode, where the object answers 404)."""
    path = _path(chain, route)
    token = chain.user_token(
        route.service, ALICE.__class__(**{**ALICE.__dict__, "tid": FABRIKAM}), " ".join(route.accepts)
    )
    r = chain.call(route.service, route.method, path, token, route.body)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert CONTOSO not in r.text


@pytest.mark.parametrize("route", [r for r in ROUTES if r.body is not None], ids=lambda r: r.id)
@pytest.mark.parametrize("field", sorted(MASS_ASSIGNMENT))
def test_mass_assignment_is_422_and_changes_nothing(chain: Chain, route: Route, field: str) -> None:
    alice = chain.user_token(route.service, ALICE)
    path = _path(chain, route, alice)
    list_path = CREATE[route.service]
    before = chain.call(route.service, "GET", list_path, alice).json()
    body = {**(route.body or {}), field: MASS_ASSIGNMENT[field]}
    r = chain.call(route.service, route.method, path, alice, body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request"
    assert chain.call(route.service, "GET", list_path, alice).json() == before


@pytest.mark.parametrize("service", ["api", "downstream-api"])
def test_ids_are_random_uuid4_that_say_nothing(chain: Chain, service: str) -> None:
    alice = chain.user_token(service, ALICE)
    ids = [_create(chain, service, alice) for _ in range(3)]
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    assert len({i[:8] for i in ids}) == 3  # no shared prefix from a clock or a counter
