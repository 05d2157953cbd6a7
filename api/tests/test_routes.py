"""The api's user routes, in process: each one reaches downstream-api on the caller's behalf, with a token
the token service minted for that hop (never the caller's own), asking for no more than the operation needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from api.settings import API_APP_ID
from fastapi.testclient import TestClient
from zerotrust.graph import Answer

from tests.support.tokens import ALICE

from .conftest import (
    BOB_OID,
    DOWNSTREAM_APP_ID_URI,
    OBO_GRANT,
    OTHER_TENANT,
    TENANT,
    ApiFactory,
    FakeDownstream,
    FakeGraph,
    FakeTokenService,
    Reply,
    Tokens,
    bearer,
)

pytestmark = pytest.mark.guidance("api-calls-api")

GROUP = "5e6f7081-92a3-44b5-c6d7-e8f90a1b2c3d"
TASK = {"id": "t-1", "title": "Buy milk", "done": False, "created_at": "2026-01-01T00:00:00Z"}
SHARED = {**TASK, "shared_with_group": GROUP}


@dataclass(frozen=True)
class Route:
    """One user route: what the caller sends, what downstream-api must receive, and the scope of that hop."""

    method: str
    path: str
    scp: str  # a delegated scope that grants the route
    down_method: str
    down_path: str
    down_scope: str  # the downstream-api permission the exchange asks for
    reply: Reply
    body: Any = None
    down_body: Any = None
    roles: list[str] = field(default_factory=list)
    acrs: list[str] = field(default_factory=list)  # authentication contexts the route needs (step-up)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def token(self, tokens: Tokens, scp: str | None = None) -> str:
        """A caller's token the route accepts (its scope, roles and authentication contexts)."""
        extra = {"acrs": self.acrs, "xms_cc": ["cp1"]} if self.acrs else {}
        return tokens.user(scp or self.scp, roles=self.roles, **extra)


USER_ROUTES = [
    Route("GET", "/tasks", "Tasks.Read", "GET", "/records", "Records.Read", Reply(200, [TASK])),
    Route(
        "POST",
        "/tasks",
        "Tasks.ReadWrite",
        "POST",
        "/records",
        "Records.ReadWrite",
        Reply(201, TASK),
        body={"title": "Buy milk"},
        down_body={"title": "Buy milk"},
    ),
    Route("GET", "/tasks/shared", "Tasks.Read", "GET", "/records/shared", "Records.Read", Reply(200, [SHARED])),
    Route("GET", "/tasks/t-1", "Tasks.Read", "GET", "/records/t-1", "Records.Read", Reply(200, TASK)),
    Route(
        "PATCH",
        "/tasks/t-1",
        "Tasks.ReadWrite",
        "PATCH",
        "/records/t-1",
        "Records.ReadWrite",
        Reply(200, {**TASK, "done": True}),
        # Only what changes goes downstream: an absent title is not sent as null.
        body={"done": True},
        down_body={"done": True},
    ),
    Route("DELETE", "/tasks/t-1", "Tasks.ReadWrite", "DELETE", "/records/t-1", "Records.ReadWrite", Reply(204)),
    Route("DELETE", "/tasks", "Tasks.ReadWrite", "DELETE", "/records", "Records.ReadWrite", Reply(204), acrs=["c1"]),
    Route(
        "PUT",
        "/tasks/t-1/share",
        "Tasks.ReadWrite",
        "PUT",
        "/records/t-1/share",
        "Records.ReadWrite",
        Reply(200, SHARED),
        body={"group_id": GROUP},
        down_body={"group_id": GROUP},
        acrs=["c1"],
    ),
    # Names pass through as downstream-api read them from Graph (the ids are what sharing takes).
    Route(
        "GET",
        "/me/groups",
        "Tasks.Read",
        "GET",
        "/me/groups",
        "Records.Read",
        Reply(200, {"groups": [GROUP], "names": {GROUP: "Engineering"}}),
    ),
    Route(
        "GET",
        "/org/tasks",
        "Tasks.Read.All",
        "GET",
        "/org/records",
        "Records.Read.All",
        Reply(200, [{**TASK, "owner": "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912", "owner_name": "Alice Adams"}]),
    ),
    Route(
        "GET",
        "/admin/tasks/summary",
        "Tasks.Read",
        "GET",
        "/admin/records/summary",
        "Records.Read",
        Reply(
            200,
            {"tenant_id": TENANT, "owners": [{"owner": "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912", "tasks": 2, "done": 1}]},
        ),
        roles=["Tasks.Admin"],
        acrs=["c1"],
    ),
]


def call(api: TestClient, route: Route, token: str, **kwargs: Any) -> Any:
    return api.request(route.method, route.path, headers=bearer(token), json=route.body, **kwargs)


def assert_on_behalf_of(
    token_service: FakeTokenService, downstream: FakeDownstream, caller_token: str, scope: str, tenant: str = TENANT
) -> None:
    """One exchange of the caller's token for `scope`, at the caller's tenant, by the api with its own
    credential; and downstream-api got that exchange's token, not the caller's."""
    [exchange] = token_service.requests
    assert exchange.grant_type == OBO_GRANT
    assert exchange.form["requested_token_use"] == "on_behalf_of"
    assert exchange.assertion == caller_token
    assert exchange.tenant == tenant
    assert exchange.form["client_id"] == API_APP_ID
    assert exchange.scopes == {f"{DOWNSTREAM_APP_ID_URI}/{scope}"}
    [issued] = token_service.issued
    assert [c.authorization for c in downstream.calls] == [f"Bearer {issued}"] * len(downstream.calls)
    assert all(caller_token not in str(c.authorization) for c in downstream.calls)


@pytest.mark.parametrize("route", USER_ROUTES, ids=str)
def test_a_user_route_calls_downstream_on_the_callers_behalf(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens, route: Route
) -> None:
    downstream.answer(route.reply)
    token = route.token(tokens)
    r = call(api, route, token)

    assert r.status_code == route.reply.status, r.text
    if route.reply.status == 204:
        assert r.content == b""
    else:
        assert r.json() == route.reply.body
    [received] = downstream.calls
    assert (received.method, received.path, received.body) == (route.down_method, route.down_path, route.down_body)
    # One id follows the request down the chain.
    assert received.correlation_id == r.headers["x-correlation-id"]
    assert_on_behalf_of(token_service, downstream, token, route.down_scope)


def test_me_shows_the_caller_as_the_api_downstream_api_and_graph_see_them(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens, graph: FakeGraph
) -> None:
    downstream_view = {"tenant_id": TENANT, "audience": "downstream", "scopes": ["Records.Read"]}
    downstream.answer(Reply(200, downstream_view))
    token = tokens.user("Tasks.Read")
    r = api.get("/me", headers=bearer(token))

    assert r.status_code == 200
    me = r.json()
    assert me["downstream_api"] == downstream_view
    assert me["api"]["audience"] == API_APP_ID and me["api"]["tenant_id"] == TENANT
    assert me["api"]["scopes"] == ["Tasks.Read"] and me["api"]["app_only"] is False
    assert token not in r.text
    assert me["graph"] == {"id": ALICE["oid"], "displayName": ALICE["name"], "userPrincipalName": "alice@x"}
    [received] = downstream.calls
    assert (received.method, received.path, received.body) == ("GET", "/me", None)
    # Two exchanges of the caller's token, each for the least the call needs; never the token itself.
    assert sorted(r.scopes.pop() for r in token_service.on_behalf_of) == [
        f"{DOWNSTREAM_APP_ID_URI}/Records.Read",
        "https://graph.microsoft.com/User.Read",
    ]
    [(method, url, authorization)] = graph.requests
    assert (method, url) == ("GET", "https://graph.microsoft.com/v1.0/me")
    assert authorization.startswith("Bearer downstream-token-") and token not in authorization


def test_a_graph_profile_for_someone_else_is_not_shown(api: TestClient, tokens: Tokens, graph: FakeGraph) -> None:
    graph.answer(Answer(200, {"id": "someone-else", "displayName": "Mallory"}))
    me = api.get("/me", headers=bearer(tokens.user("Tasks.Read"))).json()
    assert me["graph"]["error"] == "bad_gateway" and "Mallory" not in str(me)


@pytest.mark.parametrize("route", [r for r in USER_ROUTES if r.down_scope == "Records.Read"], ids=str)
def test_a_read_with_a_write_token_still_asks_downstream_for_read_only(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens, route: Route
) -> None:
    # Least privilege per hop: what the operation needs, not everything the caller's token holds.
    downstream.answer(route.reply)
    token = route.token(tokens, "Tasks.Read Tasks.ReadWrite Tasks.Read.All")
    assert call(api, route, token).status_code == 200
    assert_on_behalf_of(token_service, downstream, token, "Records.Read")


def test_a_user_of_another_tenant_is_exchanged_at_their_own_tenant(
    make_api: ApiFactory, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    api = make_api(allowed_tenants=(TENANT, OTHER_TENANT))
    downstream.answer(Reply(200, []))
    token = tokens.user("Tasks.Read", tenant="fabrikam")
    assert api.get("/tasks", headers=bearer(token)).status_code == 200
    assert_on_behalf_of(token_service, downstream, token, "Records.Read", tenant=OTHER_TENANT)


def test_downstreams_answer_is_passed_on_as_it_is(api: TestClient, downstream: FakeDownstream, tokens: Tokens) -> None:
    # Not found, and a refusal about the user (no bearer challenge): downstream-api's decision to tell.
    downstream.answer(Reply(404, {"detail": "Not found"}))
    r = api.get("/tasks/t-404", headers=bearer(tokens.user("Tasks.Read")))
    assert (r.status_code, r.json()) == (404, {"detail": "Not found"})

    refusal = {"detail": "You can share only with a group you are a member of."}
    downstream.answer(Reply(403, refusal))
    stepped_up = tokens.user("Tasks.ReadWrite", acrs=["c1"], xms_cc=["cp1"])
    r = api.put("/tasks/t-1/share", headers=bearer(stepped_up), json={"group_id": GROUP})
    assert (r.status_code, r.json()) == (403, refusal)
    assert "www-authenticate" not in r.headers


# -- the on-behalf-of result, reused ---------------------------------------------------------------


def test_the_exchange_is_reused_for_the_same_incoming_token(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    downstream.answer(Reply(200, []))
    token = tokens.user("Tasks.Read")
    for _ in range(2):
        assert api.get("/tasks", headers=bearer(token)).status_code == 200

    assert len(token_service.on_behalf_of) == 1
    [issued] = token_service.issued
    assert [c.authorization for c in downstream.calls] == [f"Bearer {issued}"] * 2


def test_each_scope_is_its_own_exchange(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    # A token obtained for a read is never used for a write: the write asks for its own.
    token = tokens.user("Tasks.ReadWrite")
    downstream.answer(Reply(200, []))
    assert api.get("/tasks", headers=bearer(token)).status_code == 200
    downstream.answer(Reply(201, TASK))
    assert api.post("/tasks", headers=bearer(token), json={"title": "Buy milk"}).status_code == 201

    asked = [r.scopes for r in token_service.on_behalf_of]
    assert asked == [{f"{DOWNSTREAM_APP_ID_URI}/Records.Read"}, {f"{DOWNSTREAM_APP_ID_URI}/Records.ReadWrite"}]
    read, write = token_service.issued
    assert [c.authorization for c in downstream.calls] == [f"Bearer {read}", f"Bearer {write}"]


def test_one_users_downstream_token_never_serves_another(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    downstream.answer(Reply(200, []))
    alice = tokens.user("Tasks.Read")
    bob = tokens.user("Tasks.Read", oid=BOB_OID, preferred_username="bob@contoso.test")
    for token in (alice, bob, alice):
        assert api.get("/tasks", headers=bearer(token)).status_code == 200

    assert [r.assertion for r in token_service.on_behalf_of] == [alice, bob]
    for_alice, for_bob = token_service.issued
    assert [c.authorization for c in downstream.calls] == [f"Bearer {t}" for t in (for_alice, for_bob, for_alice)]


# -- refused before anything goes downstream -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        # Owner, tenant and id come from the token and the server, never from the body.
        ("POST", "/tasks", {"title": "x", "owner": "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"}),
        ("POST", "/tasks", {"title": ""}),
        ("PATCH", "/tasks/t-1", {"done": True, "tenant_id": OTHER_TENANT}),
        ("PUT", "/tasks/t-1/share", {"group_id": "everyone"}),
        ("GET", "/tasks/t_1", None),
    ],
)
def test_an_invalid_request_never_reaches_downstream(
    api: TestClient,
    downstream: FakeDownstream,
    token_service: FakeTokenService,
    tokens: Tokens,
    method: str,
    path: str,
    body: Any,
) -> None:
    r = api.request(method, path, headers=bearer(tokens.user("Tasks.ReadWrite")), json=body)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    assert downstream.calls == [] and token_service.requests == []
