"""Claims challenges through the api, in process: when the on-behalf-of exchange, Graph or downstream-api
demand a fresh sign-in, a caller whose token declares cp1 gets the api's own 401 insufficient_claims with
the claims; any other caller a plain 401 invalid_token. The api drops what it held for that user.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from zerotrust.cae import challenged_claims
from zerotrust.graph import Answer

from tests.support.tokens import ALICE

from .conftest import FakeDownstream, FakeGraph, FakeTokenService, Reply, Tokens, bearer

pytestmark = pytest.mark.guidance("secure-with-cae")

NBF = '{"access_token":{"nbf":{"essential":true,"value":"1767225600"}}}'
GRAPH_CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    f'client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", '
    f'claims="{base64.b64encode(NBF.encode()).decode()}"'
)
READS = [("GET", "/tasks"), ("GET", "/me"), ("GET", "/me/groups")]


def _token(tokens: Tokens, capable: bool, scp: str = "Tasks.Read") -> str:
    return tokens.user(scp, **({"xms_cc": ["cp1"]} if capable else {}))


def _assert_claims_challenge(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    header = r.headers["www-authenticate"]
    assert header.startswith('Bearer realm="api", error="insufficient_claims"'), header
    assert json.loads(challenged_claims(header) or "null") == json.loads(NBF)
    assert r.json()["error"] == "insufficient_claims" and r.json()["correlation_id"]


def _assert_plain_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    header = r.headers["www-authenticate"]
    assert header.startswith('Bearer realm="api", error="invalid_token"') and "claims=" not in header, header
    assert r.json()["error"] == "invalid_token" and "claims" not in r.text


def _refuse_with_claims(token_service: FakeTokenService) -> None:
    # What Entra answers an on-behalf-of exchange whose user token predates revoked sessions.
    token_service.refuse("interaction_required", 50173, suberror="bad_token", claims=NBF)


@pytest.mark.parametrize(("method", "path"), [*READS, ("POST", "/tasks")], ids=lambda v: str(v))
def test_an_exchange_that_demands_claims_is_a_claims_challenge_for_a_cp1_caller(
    api: TestClient, token_service: FakeTokenService, tokens: Tokens, method: str, path: str
) -> None:
    _refuse_with_claims(token_service)
    scp = "Tasks.ReadWrite" if method == "POST" else "Tasks.Read"
    r = api.request(method, path, headers=bearer(_token(tokens, True, scp)), json={"title": "x"})
    _assert_claims_challenge(r)


@pytest.mark.parametrize(("method", "path"), READS, ids=lambda v: str(v))
def test_the_same_refusal_is_a_plain_401_without_claims_for_a_caller_without_cp1(
    api: TestClient, token_service: FakeTokenService, tokens: Tokens, method: str, path: str
) -> None:
    _refuse_with_claims(token_service)
    _assert_plain_401(api.request(method, path, headers=bearer(_token(tokens, False))))


def test_the_api_declares_cp1_when_it_exchanges(
    api: TestClient, token_service: FakeTokenService, tokens: Tokens
) -> None:
    assert api.get("/tasks", headers=bearer(_token(tokens, False))).status_code == 200
    [exchange] = token_service.on_behalf_of
    requested = json.loads(exchange.form["claims"])
    assert requested["access_token"]["xms_cc"]["values"] == ["CP1"]


def test_graph_demanding_claims_is_asked_of_the_token_service_then_relayed(
    api: TestClient, token_service: FakeTokenService, tokens: Tokens, graph: FakeGraph
) -> None:
    token = _token(tokens, True)
    assert api.get("/me", headers=bearer(token)).status_code == 200  # the api now holds tokens for alice
    held = len(token_service.on_behalf_of)
    graph.answer(Answer(401, None, GRAPH_CHALLENGE))
    _refuse_with_claims(token_service)

    _assert_claims_challenge(api.get("/me", headers=bearer(token)))
    # Graph's claims went to the token service with the api's own cp1, in one new exchange for Graph.
    [asked] = [r for r in token_service.on_behalf_of[held:] if "claims" in r.form and "nbf" in r.form["claims"]]
    claims = json.loads(asked.form["claims"])
    assert claims["access_token"]["nbf"]["value"] == "1767225600"
    assert claims["access_token"]["xms_cc"]["values"] == ["CP1"]
    assert asked.scopes == {"https://graph.microsoft.com/User.Read"}


def test_graph_demanding_claims_is_a_plain_401_for_a_caller_without_cp1(
    api: TestClient, token_service: FakeTokenService, tokens: Tokens, graph: FakeGraph
) -> None:
    graph.answer(Answer(401, None, GRAPH_CHALLENGE))
    _refuse_with_claims(token_service)
    _assert_plain_401(api.get("/me", headers=bearer(_token(tokens, False))))


def test_when_the_token_service_can_satisfy_graphs_claims_the_request_succeeds(
    api: TestClient, token_service: FakeTokenService, tokens: Tokens, graph: FakeGraph
) -> None:
    graph.answer(Answer(401, None, GRAPH_CHALLENGE), Answer(200, {"id": ALICE["oid"]}))
    r = api.get("/me", headers=bearer(_token(tokens, True)))
    assert r.status_code == 200 and r.json()["graph"]["id"]
    assert len(graph.requests) == 2


def test_after_a_challenge_nothing_held_for_that_user_is_used_again(
    api: TestClient, token_service: FakeTokenService, tokens: Tokens
) -> None:
    token = _token(tokens, True)
    assert api.get("/tasks", headers=bearer(token)).status_code == 200
    assert api.get("/tasks", headers=bearer(token)).status_code == 200
    assert len(token_service.on_behalf_of) == 1  # the second read used the cached exchange

    _refuse_with_claims(token_service)
    token_service.lifetime = 3600
    # The cached token is still valid: only a request that reaches the token service sees the refusal.
    assert api.get("/tasks", headers=bearer(token)).status_code == 200
    _assert_claims_challenge(api.get("/me", headers=bearer(token)))
    token_service.refusal = None
    assert api.get("/tasks", headers=bearer(token)).status_code == 200
    # /me's exchange for Graph was refused; the read that followed exchanged again: its cached result had
    # been dropped with everything else held for alice.
    assert [r.scopes.pop().rsplit("/", 1)[-1] for r in token_service.on_behalf_of] == [
        "Records.Read",
        "User.Read",
        "Records.Read",
    ]


@pytest.mark.parametrize("capable", [True, False], ids=["cp1", "no-cp1"])
def test_downstream_apis_claims_challenge_is_answered_by_the_api_never_passed_through(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens, capable: bool
) -> None:
    encoded = base64.b64encode(NBF.encode()).decode()
    challenge = f'Bearer realm="downstream-api", error="insufficient_claims", claims="{encoded}"'
    downstream.answer(Reply(401, {"detail": "sign in"}, headers={"WWW-Authenticate": challenge}))
    r = api.get("/tasks", headers=bearer(_token(tokens, capable)))
    if capable:
        _assert_claims_challenge(r)
    else:
        _assert_plain_401(r)
    assert 'realm="downstream-api"' not in r.headers["www-authenticate"]


@pytest.mark.parametrize(
    "claims",
    [base64.b64encode(b"not json").decode(), base64.b64encode(b'{"evil":{}}').decode(), "!!!"],
    ids=["not-json", "not-a-claims-request", "not-base64"],
)
def test_a_malformed_challenge_from_downstream_is_a_502_never_relayed(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens, claims: str
) -> None:
    challenge = f'Bearer realm="downstream-api", error="insufficient_claims", claims="{claims}"'
    downstream.answer(Reply(401, {}, headers={"WWW-Authenticate": challenge}))
    r = api.get("/tasks", headers=bearer(_token(tokens, True)))
    assert r.status_code == 502 and "www-authenticate" not in r.headers and claims not in r.text


# -- step-up: an authentication context for sensitive actions -------------------------------------

C1 = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}'
GROUP = "5e6f7081-92a3-44b5-c6d7-e8f90a1b2c3d"
SENSITIVE = [
    ("DELETE", "/tasks", None, "Tasks.ReadWrite", [], Reply(204)),
    ("PUT", "/tasks/t-1/share", {"group_id": GROUP}, "Tasks.ReadWrite", [], Reply(200, {"id": "t-1"})),
    ("GET", "/admin/tasks/summary", None, "Tasks.Read", ["Tasks.Admin"], Reply(200, {"tenant_id": "t", "owners": []})),
]
SENSITIVE_IDS = [f"{m} {p}" for m, p, *_ in SENSITIVE]


def _sensitive(api: TestClient, tokens: Tokens, action: tuple[Any, ...], **claims: Any) -> httpx.Response:
    method, path, body, scp, roles, _ = action
    return api.request(method, path, headers=bearer(tokens.user(scp, roles=roles, **claims)), json=body)


@pytest.mark.parametrize("action", SENSITIVE, ids=SENSITIVE_IDS)
@pytest.mark.parametrize("acrs", [[], ["c2"], ["C1 "]], ids=["none", "another-context", "not-exactly-c1"])
def test_a_sensitive_action_without_c1_is_a_claims_challenge_naming_it(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens, action: tuple[Any, ...], acrs: list[str]
) -> None:
    r = _sensitive(api, tokens, action, xms_cc=["cp1"], acrs=acrs)
    assert r.status_code == 401, r.text
    header = r.headers["www-authenticate"]
    assert header.startswith('Bearer realm="api", error="insufficient_claims"'), header
    assert json.loads(challenged_claims(header) or "null") == json.loads(C1)
    assert downstream.calls == []  # refused before anything happened


@pytest.mark.parametrize("action", SENSITIVE, ids=SENSITIVE_IDS)
def test_a_client_that_cant_answer_a_challenge_gets_a_403_naming_the_context(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens, action: tuple[Any, ...]
) -> None:
    r = _sensitive(api, tokens, action)
    assert r.status_code == 403 and "c1" in r.json()["error_description"]
    assert (
        'error="insufficient_scope"' in r.headers["www-authenticate"] and "claims=" not in r.headers["www-authenticate"]
    )
    assert downstream.calls == []


@pytest.mark.parametrize("action", SENSITIVE, ids=SENSITIVE_IDS)
def test_with_c1_the_action_is_done_and_c1_is_asked_for_downstream_too(
    api: TestClient,
    downstream: FakeDownstream,
    token_service: FakeTokenService,
    tokens: Tokens,
    action: tuple[Any, ...],
) -> None:
    downstream.answer(action[-1])
    r = _sensitive(api, tokens, action, xms_cc=["cp1"], acrs=["c1"])
    assert r.status_code == action[-1].status, r.text
    [exchange] = token_service.on_behalf_of
    assert json.loads(exchange.form["claims"])["access_token"]["acrs"] == {"essential": True, "value": "c1"}


def test_unsharing_needs_no_second_factor(api: TestClient, downstream: FakeDownstream, tokens: Tokens) -> None:
    downstream.answer(Reply(200, {"id": "t-1"}))
    r = api.put("/tasks/t-1/share", headers=bearer(tokens.user("Tasks.ReadWrite")), json={"group_id": None})
    assert r.status_code == 200, r.text
