"""The api when what it depends on fails, in process: clean answers with a correlation id, never a 500.

downstream-api unreachable or failing -> 503 with Retry-After; the user's grant revoked at the identity
provider (on-behalf-of refused) -> 401 invalid_token, so the client signs the user in again; consent
missing -> 403 consent_required; the token service unreachable -> 503; downstream-api refusing the api's
own token -> 502, which is not the caller's to fix, so no challenge; a deactivated account -> 403 as
downstream-api said it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import (
    ApiFactory,
    FakeDownstream,
    FakeTokenService,
    Reply,
    Tokens,
    bearer,
)

pytestmark = pytest.mark.guidance("api-calls-api")

UNREACHABLE = "downstream-api can't be reached."
FAILED = "downstream-api could not serve the request."
UNREADABLE = "downstream-api sent an unreadable answer."
SIGN_IN_AGAIN = "Your sign-in is no longer valid; sign in again."
NO_CONSENT = "An administrator has not granted this permission."
TOKEN_SERVICE_DOWN = "The token service can't be reached."
TOKEN_SERVICE_FAILED = "The token service refused or failed."
DEACTIVATED = (
    "This account has been deactivated by your organization's provisioning service; "
    "ask your administrator to reactivate it."
)

# (method, path, JSON body, scopes of a token that may call it): a read, a write, the admin-consented read.
USER_CALLS = [
    ("GET", "/tasks", None, "Tasks.Read"),
    ("POST", "/tasks", {"title": "Buy milk"}, "Tasks.ReadWrite"),
    ("DELETE", "/tasks/t-1", None, "Tasks.ReadWrite"),
    ("GET", "/org/tasks", None, "Tasks.Read.All"),
]
USER_CALL_IDS = [f"{m} {p}" for m, p, _, _ in USER_CALLS]


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"  # a caller's W3C trace context
TRACE_ID_SENT = TRACEPARENT.split("-")[1]


def user_call(api: TestClient, tokens: Tokens, method: str, path: str, body: Any, scp: str) -> Any:
    return api.request(method, path, headers=bearer(tokens.user(scp)), json=body)


def assert_error(r: Any, status: int, error: str, description: str, *, retry: bool) -> None:
    """The api's answer for a failure past its own checks: the error, the id to quote, and no challenge
    unless the caller's sign-in is what failed."""
    assert r.status_code == status, r.text
    assert r.json() == {
        "error": error,
        "error_description": description,
        "correlation_id": r.headers["x-correlation-id"],
    }
    assert r.headers["cache-control"] == "no-store"
    assert r.headers.get("retry-after") == ("5" if retry else None)
    if status != 401:
        assert "www-authenticate" not in r.headers


# -- downstream-api unreachable --------------------------------------------------------------------


@pytest.fixture
def unreachable_api(make_api: ApiFactory, downstream: FakeDownstream) -> TestClient:
    downstream.reachable = False
    return make_api()


@pytest.mark.parametrize(("method", "path", "body", "scp"), USER_CALLS, ids=USER_CALL_IDS)
def test_downstream_unreachable_is_a_503_with_a_correlation_id(
    unreachable_api: TestClient,
    token_service: FakeTokenService,
    tokens: Tokens,
    method: str,
    path: str,
    body: Any,
    scp: str,
) -> None:
    r = user_call(unreachable_api, tokens, method, path, body, scp)
    assert_error(r, 503, "temporarily_unavailable", UNREACHABLE, retry=True)
    assert len(token_service.on_behalf_of) == 1  # the exchange worked; the hop after it did not


def test_the_callers_correlation_id_is_the_one_answered(unreachable_api: TestClient, tokens: Tokens) -> None:
    # The correlation id is the W3C trace id: the caller's, when it sends a valid traceparent.
    cid = TRACE_ID_SENT
    r = unreachable_api.get(
        "/tasks",
        headers={**bearer(tokens.user()), "traceparent": TRACEPARENT},
    )
    assert r.headers["x-correlation-id"] == cid
    assert_error(r, 503, "temporarily_unavailable", UNREACHABLE, retry=True)


def test_an_unreachable_downstream_is_a_503_on_app_only_routes_too(unreachable_api: TestClient, tokens: Tokens) -> None:
    r = unreachable_api.get("/reports/tenant", headers=bearer(tokens.daemon()))
    assert_error(r, 503, "temporarily_unavailable", UNREACHABLE, retry=True)


def test_scim_answers_an_unreachable_downstream_as_a_scim_503(unreachable_api: TestClient, tokens: Tokens) -> None:
    r = unreachable_api.get("/scim/v2/Users", headers=bearer(tokens.provisioner()))
    assert r.status_code == 503 and r.headers["retry-after"] == "5"  # the provisioning service retries
    assert r.headers["content-type"] == "application/scim+json"
    assert r.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "503",
        "detail": f"{UNREACHABLE} (correlation id {r.headers['x-correlation-id']})",
    }


def test_me_still_shows_the_api_view_when_downstream_is_unreachable(
    unreachable_api: TestClient, tokens: Tokens
) -> None:
    r = unreachable_api.get("/me", headers=bearer(tokens.user()))
    assert r.status_code == 200
    me = r.json()
    assert me["api"]["scopes"] == ["Tasks.Read"]
    assert me["downstream_api"] == {
        "error": "temporarily_unavailable",
        "error_description": UNREACHABLE,
        "correlation_id": r.headers["x-correlation-id"],
    }


# -- the token service refuses or can't be reached -------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "suberror"),
    [
        ("invalid_grant", 50173, "bad_token"),  # the user's sessions revoked
        ("invalid_grant", 500133, None),  # the assertion expired on the way
        ("interaction_required", 50076, None),  # MFA now required
    ],
)
@pytest.mark.parametrize(("method", "path", "body", "scp"), USER_CALLS, ids=USER_CALL_IDS)
def test_a_revoked_grant_makes_the_api_ask_for_a_new_sign_in(
    api: TestClient,
    downstream: FakeDownstream,
    token_service: FakeTokenService,
    tokens: Tokens,
    error: str,
    code: int,
    suberror: str | None,
    method: str,
    path: str,
    body: Any,
    scp: str,
) -> None:
    token_service.refuse(error, code, suberror=suberror)
    r = user_call(api, tokens, method, path, body, scp)
    # The access token itself is still valid; the on-behalf-of exchange is what fails.
    assert_error(r, 401, "invalid_token", SIGN_IN_AGAIN, retry=False)
    assert r.headers["www-authenticate"] == (
        f'Bearer realm="api", error="invalid_token", error_description="{SIGN_IN_AGAIN}"'
    )
    assert downstream.calls == []


@pytest.mark.guidance("permissions-require-admin-consent")
@pytest.mark.parametrize(("error", "code"), [("invalid_grant", 65001), ("invalid_grant", 90094)])
@pytest.mark.parametrize(("method", "path", "body", "scp"), USER_CALLS, ids=USER_CALL_IDS)
def test_missing_consent_is_a_403_consent_required(
    api: TestClient,
    downstream: FakeDownstream,
    token_service: FakeTokenService,
    tokens: Tokens,
    error: str,
    code: int,
    method: str,
    path: str,
    body: Any,
    scp: str,
) -> None:
    # Entra says invalid_grant, but signing in again can't grant what only an administrator can: not a 401.
    token_service.refuse(error, code, suberror="consent_required")
    r = user_call(api, tokens, method, path, body, scp)
    assert_error(r, 403, "consent_required", NO_CONSENT, retry=False)
    assert downstream.calls == []


@pytest.mark.parametrize(("method", "path", "body", "scp"), USER_CALLS, ids=USER_CALL_IDS)
def test_an_unreachable_token_service_is_a_503(
    api: TestClient,
    downstream: FakeDownstream,
    token_service: FakeTokenService,
    tokens: Tokens,
    method: str,
    path: str,
    body: Any,
    scp: str,
) -> None:
    token_service.reachable = False
    r = user_call(api, tokens, method, path, body, scp)
    assert_error(r, 503, "temporarily_unavailable", TOKEN_SERVICE_DOWN, retry=True)
    assert downstream.calls == []


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (401, "invalid_client", 700027),
        (400, "unauthorized_client", 700016),
        (400, "invalid_scope", 70011),
        # A server error at the token service: MSAL raises rather than answering; still a clean 503.
        (500, "server_error", 90033),
        (503, "temporarily_unavailable", 50196),
    ],
)
def test_a_token_service_refusing_the_api_itself_is_a_503(
    api: TestClient,
    downstream: FakeDownstream,
    token_service: FakeTokenService,
    tokens: Tokens,
    status: int,
    error: str,
    code: int,
) -> None:
    # The api's own credential or registration is at fault, not the caller: neither a 401 that would
    # sign them out nor the token service's words.
    token_service.refuse(error, code, status=status)
    r = api.get("/tasks", headers=bearer(tokens.user()))
    assert_error(r, 503, "temporarily_unavailable", TOKEN_SERVICE_FAILED, retry=True)
    assert downstream.calls == []


def test_the_api_recovers_once_the_token_service_is_back(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    token = tokens.user()
    token_service.reachable = False
    assert api.get("/tasks", headers=bearer(token)).status_code == 503
    token_service.reachable = True
    downstream.answer(Reply(200, []))
    assert api.get("/tasks", headers=bearer(token)).status_code == 200


@pytest.mark.guidance("developer-strategy-application-permissions")
@pytest.mark.parametrize(
    ("reachable", "refusal", "description"),
    [
        (False, None, TOKEN_SERVICE_DOWN),
        (True, ("unauthorized_client", 700016), TOKEN_SERVICE_FAILED),
        (True, ("invalid_scope", 1002012), TOKEN_SERVICE_FAILED),
    ],
)
def test_no_app_token_is_a_503(
    api: TestClient,
    downstream: FakeDownstream,
    token_service: FakeTokenService,
    tokens: Tokens,
    reachable: bool,
    refusal: tuple[str, int] | None,
    description: str,
) -> None:
    token_service.reachable = reachable
    if refusal:
        token_service.refuse(*refusal)
    r = api.get("/reports/tenant", headers=bearer(tokens.daemon()))
    assert_error(r, 503, "temporarily_unavailable", description, retry=True)
    assert downstream.calls == []


# -- downstream-api answers, but not as it should ---------------------------------------------------

CHALLENGES = [
    Reply(
        401,
        {"error": "invalid_token", "error_description": "The token is not meant for this API."},
        headers={
            "WWW-Authenticate": 'Bearer realm="downstream-api", error="invalid_token", '
            'error_description="The token is not meant for this API."'
        },
    ),
    Reply(
        403,
        {"error": "insufficient_scope", "error_description": "The token does not grant this operation."},
        headers={
            "WWW-Authenticate": 'Bearer realm="downstream-api", error="insufficient_scope", '
            'error_description="The token does not grant this operation.", scope="Records.ReadWrite"'
        },
    ),
    # A 401 is about the token even without its challenge.
    Reply(401, {"detail": "Unauthorized"}),
]


@pytest.mark.parametrize("refusal", CHALLENGES, ids=["401-challenge", "403-challenge", "401-bare"])
@pytest.mark.parametrize(("method", "path", "body", "scp"), USER_CALLS, ids=USER_CALL_IDS)
def test_downstream_refusing_the_apis_own_token_is_a_502_not_the_callers_fault(
    api: TestClient,
    downstream: FakeDownstream,
    tokens: Tokens,
    refusal: Reply,
    method: str,
    path: str,
    body: Any,
    scp: str,
) -> None:
    downstream.answer(refusal)
    r = user_call(api, tokens, method, path, body, scp)
    # The caller's token was fine: nothing for them to fix, so no challenge and none of downstream's words.
    assert_error(r, 502, "bad_gateway", FAILED, retry=False)
    assert len(downstream.calls) == 1


@pytest.mark.guidance("developer-strategy-application-permissions")
@pytest.mark.parametrize("refusal", CHALLENGES[:2], ids=["401-challenge", "403-challenge"])
def test_downstream_refusing_the_apis_app_token_is_a_502(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens, refusal: Reply
) -> None:
    downstream.answer(refusal)
    r = api.get("/reports/tenant", headers=bearer(tokens.daemon()))
    assert_error(r, 502, "bad_gateway", FAILED, retry=False)


@pytest.mark.guidance("identity-standards-based-development-methodologies")
@pytest.mark.parametrize(("method", "path", "body", "scp"), USER_CALLS, ids=USER_CALL_IDS)
def test_a_deactivated_account_is_told_so(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens, method: str, path: str, body: Any, scp: str
) -> None:
    # As downstream-api refuses a user the provisioning service deactivated: about the caller, not this tier.
    downstream.answer(
        Reply(403, {"detail": {"error": "account_deactivated", "error_description": "deactivated downstream"}})
    )
    r = user_call(api, tokens, method, path, body, scp)
    assert_error(r, 403, "account_deactivated", DEACTIVATED, retry=False)


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize(("method", "path", "body", "scp"), USER_CALLS, ids=USER_CALL_IDS)
def test_downstream_failing_is_a_503(
    api: TestClient,
    downstream: FakeDownstream,
    tokens: Tokens,
    status: int,
    method: str,
    path: str,
    body: Any,
    scp: str,
) -> None:
    downstream.answer(Reply(status, {"error": "server_error", "error_description": "Traceback: secret internals"}))
    r = user_call(api, tokens, method, path, body, scp)
    assert_error(r, 503, "temporarily_unavailable", FAILED, retry=True)
    assert "secret internals" not in r.text


@pytest.mark.parametrize("text", ["<html>Bad gateway</html>", '{"id": "t-1", "title": '])
@pytest.mark.parametrize(("method", "path", "body", "scp"), USER_CALLS, ids=USER_CALL_IDS)
def test_an_unreadable_downstream_answer_is_a_502(
    api: TestClient,
    downstream: FakeDownstream,
    tokens: Tokens,
    text: str,
    method: str,
    path: str,
    body: Any,
    scp: str,
) -> None:
    downstream.answer(Reply(200, text=text))
    r = user_call(api, tokens, method, path, body, scp)
    assert_error(r, 502, "bad_gateway", UNREADABLE, retry=False)


def test_an_unreadable_answer_to_an_app_only_call_is_a_502(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens
) -> None:
    downstream.answer(Reply(200, text="not json"))
    r = api.get("/reports/tenant", headers=bearer(tokens.daemon()))
    assert_error(r, 502, "bad_gateway", UNREADABLE, retry=False)
