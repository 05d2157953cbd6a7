"""What each of the api's routes demands of the caller's token, in process, and that a refusal costs nothing
downstream: no token exchange, no call to downstream-api.

Each refusal is checked exactly (status, WWW-Authenticate, body): RFC 6750 401 without an error code when no
token came, 403 insufficient_scope naming what the route accepts when the token doesn't grant it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from api.settings import DAEMON_APP_ID, PROVISIONER_APP_ID
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from zerotrust.docs import PUBLIC_PATHS

from .conftest import FakeDownstream, FakeTokenService, Tokens, bearer

pytestmark = pytest.mark.guidance("protect-api")

USER_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SCIM_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "externalId": "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912",
    "userName": "alice@contoso.test",
}
SCIM_PATCH = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "active", "value": False}],
}

READ, WRITE, ORG, ADMIN, REPORT, PROVISION = "read", "write", "org", "admin", "report", "provision"
# What the 403 names as accepted (the route's alternatives, in its order).
ACCEPTED = {
    READ: "Tasks.Read Tasks.ReadWrite",
    WRITE: "Tasks.ReadWrite",
    ORG: "Tasks.Read.All",
    ADMIN: "Tasks.Read Tasks.ReadWrite",  # first the scope that lets the app act for the user
    REPORT: "Tasks.Report.All",
    PROVISION: "Users.Provision",
}
APP_ONLY = {REPORT, PROVISION}


@dataclass(frozen=True)
class Guarded:
    method: str
    path: str
    served_as: str  # the route's path template
    needs: str
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Guarded("GET", "/tasks", "/tasks", READ),
    Guarded("POST", "/tasks", "/tasks", WRITE, {"title": "Buy milk"}),
    Guarded("GET", "/tasks/shared", "/tasks/shared", READ),
    Guarded("GET", "/tasks/t-1", "/tasks/{task_id}", READ),
    Guarded("PATCH", "/tasks/t-1", "/tasks/{task_id}", WRITE, {"done": True}),
    Guarded("DELETE", "/tasks/t-1", "/tasks/{task_id}", WRITE),
    Guarded("DELETE", "/tasks", "/tasks", WRITE),
    Guarded("PUT", "/tasks/t-1/share", "/tasks/{task_id}/share", WRITE, {"group_id": None}),
    Guarded("GET", "/me", "/me", READ),
    Guarded("GET", "/me/groups", "/me/groups", READ),
    Guarded("GET", "/org/tasks", "/org/tasks", ORG),
    Guarded("GET", "/admin/tasks/summary", "/admin/tasks/summary", ADMIN),
    Guarded("GET", "/reports/tenant", "/reports/tenant", REPORT),
    Guarded("POST", "/scim/v2/Users", "/scim/v2/Users", PROVISION, SCIM_USER),
    Guarded("GET", "/scim/v2/Users", "/scim/v2/Users", PROVISION),
    Guarded("GET", f"/scim/v2/Users/{USER_ID}", "/scim/v2/Users/{user_id}", PROVISION),
    Guarded("PUT", f"/scim/v2/Users/{USER_ID}", "/scim/v2/Users/{user_id}", PROVISION, SCIM_USER),
    Guarded("PATCH", f"/scim/v2/Users/{USER_ID}", "/scim/v2/Users/{user_id}", PROVISION, SCIM_PATCH),
    Guarded("DELETE", f"/scim/v2/Users/{USER_ID}", "/scim/v2/Users/{user_id}", PROVISION),
]
USER_ROUTES = [r for r in ROUTES if r.needs not in APP_ONLY]
APP_ONLY_ROUTES = [r for r in ROUTES if r.needs in APP_ONLY]


def insufficient_scope(scope: str, description: str = "The token does not grant this operation.") -> str:
    return f'Bearer realm="api", error="insufficient_scope", error_description="{description}", scope="{scope}"'


def send(api: TestClient, route: Guarded, headers: dict[str, str]) -> Any:
    return api.request(route.method, route.path, headers=headers, json=route.body)


def assert_forbidden(r: Any, scope: str, description: str = "The token does not grant this operation.") -> None:
    assert r.status_code == 403, r.text
    assert r.headers["www-authenticate"] == insufficient_scope(scope, description)
    assert r.json() == {"error": "insufficient_scope", "error_description": description}


@pytest.fixture(autouse=True)
def nothing_downstream(downstream: FakeDownstream, token_service: FakeTokenService) -> Any:
    """Every refusal here happens before the api spends anything on the request."""
    yield
    assert token_service.requests == [], "a refused request got a token exchanged"
    assert downstream.calls == [], "a refused request reached downstream-api"


def test_this_table_lists_every_route_the_api_serves(api: TestClient) -> None:
    served = {
        (method, str(route.path_format))
        for route in iter_route_contexts(api.app.routes)  # type: ignore[attr-defined]
        if isinstance(route.original_route, APIRoute) and route.path not in {"/healthz", *PUBLIC_PATHS}
        for method in route.methods or ()
    }
    assert served == {(r.method, r.served_as) for r in ROUTES}


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_no_token_is_a_401_that_asks_for_one(api: TestClient, route: Guarded) -> None:
    r = send(api, route, {})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    assert r.json() == {"error": "unauthorized", "error_description": "Sign-in required."}


def refused_tokens(tokens: Tokens, needs: str) -> list[tuple[str, str, str]]:
    """(token, the scope the 403 names, its description): valid tokens for this api, one permission short."""
    plain = "The token does not grant this operation."
    return {
        # Tasks.Read.All is a real scope of this api, but it reads the organization, not your tasks.
        READ: [(tokens.user("Tasks.Read.All"), ACCEPTED[READ], plain)],
        WRITE: [(tokens.user("Tasks.Read Tasks.Read.All"), ACCEPTED[WRITE], plain)],
        # Tasks.ReadWrite does not widen to the organization.
        ORG: [(tokens.user("Tasks.Read Tasks.ReadWrite"), ACCEPTED[ORG], plain)],
        ADMIN: [
            # The app may act for the user, but the user holds no admin role...
            (
                tokens.user("Tasks.Read Tasks.ReadWrite Tasks.Read.All"),
                "Tasks.Admin",
                "The signed-in user is not assigned an app role this operation needs.",
            ),
            # ...or the user holds it, but the app was not granted a read scope for them.
            (tokens.user("Tasks.Read.All", roles=["Tasks.Admin"]), ACCEPTED[ADMIN], plain),
        ],
        REPORT: [(tokens.daemon(roles=("Users.Provision",)), ACCEPTED[REPORT], plain)],
        PROVISION: [(tokens.provisioner(roles=("Tasks.Report.All",)), ACCEPTED[PROVISION], plain)],
    }[needs]


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_a_token_without_the_routes_permission_is_a_403(api: TestClient, tokens: Tokens, route: Guarded) -> None:
    for token, scope, description in refused_tokens(tokens, route.needs):
        assert_forbidden(send(api, route, bearer(token)), scope, description)


@pytest.mark.guidance("developer-strategy-application-permissions")
@pytest.mark.parametrize("route", APP_ONLY_ROUTES, ids=str)
def test_a_users_token_on_an_app_only_route_is_a_403(api: TestClient, tokens: Tokens, route: Guarded) -> None:
    # Every scope, and app roles of the very names the route wants assigned to the user: still a user.
    token = tokens.user(
        "Tasks.Read Tasks.ReadWrite Tasks.Read.All", roles=["Tasks.Report.All", "Users.Provision", "Tasks.Admin"]
    )
    assert_forbidden(send(api, route, bearer(token)), ACCEPTED[route.needs])


@pytest.mark.guidance("developer-strategy-application-permissions")
@pytest.mark.parametrize("route", USER_ROUTES, ids=str)
@pytest.mark.parametrize("azp", [DAEMON_APP_ID, PROVISIONER_APP_ID], ids=["daemon", "provisioner"])
def test_an_apps_token_on_a_user_route_is_a_403(api: TestClient, tokens: Tokens, route: Guarded, azp: str) -> None:
    # Every app role there is, and the admin role: no user, so nobody on whose behalf to act.
    token = tokens.app(["Tasks.Report.All", "Users.Provision", "Tasks.Admin"], azp=azp)
    assert_forbidden(send(api, route, bearer(token)), ACCEPTED[route.needs])
    # Nor when the app-only token also carries scopes: idtyp=app says there is no user.
    token = tokens.app(["Tasks.Admin"], azp=azp, scp="Tasks.Read Tasks.ReadWrite Tasks.Read.All")
    assert_forbidden(send(api, route, bearer(token)), ACCEPTED[route.needs])


@pytest.mark.guidance("developer-strategy-application-permissions")
@pytest.mark.parametrize("route", USER_ROUTES, ids=str)
def test_a_users_token_got_by_an_app_only_client_is_refused(api: TestClient, tokens: Tokens, route: Guarded) -> None:
    # The daemon may call app-only; it is not a client users sign in to this api through.
    token = tokens.user("Tasks.Read Tasks.ReadWrite Tasks.Read.All", roles=["Tasks.Admin"], azp=DAEMON_APP_ID)
    r = send(api, route, bearer(token))
    assert r.status_code == 401
    description = "The calling application is not allowed."
    assert r.headers["www-authenticate"] == (
        f'Bearer realm="api", error="invalid_token", error_description="{description}"'
    )
    assert r.json() == {"error": "invalid_token", "error_description": description}


@pytest.mark.parametrize("route", [r for r in ROUTES if r.body is not None], ids=str)
def test_the_body_is_not_read_before_the_caller_is_authorized(api: TestClient, tokens: Tokens, route: Guarded) -> None:
    # Garbage from someone who may not call the route gets the 403, not a validation answer about it.
    token, scope, description = refused_tokens(tokens, route.needs)[0]
    r = api.request(
        route.method, route.path, headers={**bearer(token), "Content-Type": "application/json"}, content=b"{"
    )
    assert_forbidden(r, scope, description)
