"""The api's app-only routes, in process: the daemon's tenant report and the provisioning client's SCIM.

No user is involved, so the api calls downstream-api as itself: a client-credentials token for
downstream-api's `/.default`, asked for in the caller's tenant (downstream-api filters by the token's
tenant, so the caller can only ever reach its own), and never the caller's token.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from api.settings import API_APP_ONLY_APP_ID
from fastapi.testclient import TestClient

from .conftest import (
    DOWNSTREAM_APP_ID_URI,
    OTHER_TENANT,
    TENANT,
    ApiFactory,
    FakeDownstream,
    FakeTokenService,
    Reply,
    Tokens,
    bearer,
)

pytestmark = pytest.mark.guidance("developer-strategy-application-permissions")

SCIM = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"  # downstream-api's id of the provisioned user
OBJECT_ID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"  # the user's Entra object id: SCIM's externalId
USER = {
    "id": USER_ID,
    "object_id": OBJECT_ID,
    "user_name": "alice@contoso.test",
    "display_name": "Alice Adams",
    "active": True,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-02T00:00:00Z",
}
RESOURCE = {
    "schemas": [USER_SCHEMA],
    "id": USER_ID,
    "externalId": OBJECT_ID,
    "userName": "alice@contoso.test",
    "displayName": "Alice Adams",
    "active": True,
    "meta": {
        "resourceType": "User",
        "created": "2026-01-01T00:00:00Z",
        "lastModified": "2026-01-02T00:00:00Z",
        # The configured address (API_PUBLIC_URL, here its default), never the request's Host.
        "location": f"https://localhost:8001/scim/v2/Users/{USER_ID}",
    },
}
NEW_USER = {"schemas": [USER_SCHEMA], "externalId": OBJECT_ID, "userName": "alice@contoso.test", "active": True}


def assert_as_itself(
    token_service: FakeTokenService, downstream: FakeDownstream, caller_token: str, tenant: str = TENANT
) -> None:
    """One client-credentials token for downstream-api, in the caller's tenant; every call carried it."""
    [request] = token_service.requests
    assert request.grant_type == "client_credentials"
    assert request.tenant == tenant
    # As the api's app-only registration, never as the client that acts for users.
    assert request.form["client_id"] == API_APP_ONLY_APP_ID
    assert request.scopes == {f"{DOWNSTREAM_APP_ID_URI}/.default"}
    assert request.assertion is None
    [issued] = token_service.issued
    assert downstream.calls
    assert [c.authorization for c in downstream.calls] == [f"Bearer {issued}"] * len(downstream.calls)
    assert all(caller_token not in str(c.authorization) for c in downstream.calls)


def scim(
    api: TestClient, method: str, path: str, token: str, body: Any = None, headers_host: str = "", **kwargs: Any
) -> Any:
    headers = {**bearer(token), "Content-Type": SCIM, **({"Host": headers_host} if headers_host else {})}
    content = None if body is None else json.dumps(body)
    return api.request(method, f"/scim/v2{path}", headers=headers, content=content, **kwargs)


# -- the tenant report -------------------------------------------------------------------------------


def test_the_tenant_report_is_asked_of_downstream_as_the_api_itself(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    report = {"tenant_id": TENANT, "open": 2, "done": 1, "owners": 1}
    downstream.answer(Reply(200, report))
    token = tokens.daemon()
    r = api.get("/reports/tenant", headers=bearer(token))

    assert (r.status_code, r.json()) == (200, report)
    [received] = downstream.calls
    assert (received.method, received.path, received.body) == ("GET", "/reports/tenant", None)
    assert received.correlation_id == r.headers["x-correlation-id"]
    assert_as_itself(token_service, downstream, token)


def test_the_app_token_is_asked_for_in_the_callers_tenant(
    make_api: ApiFactory, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    # Never the api's home tenant: a fabrikam daemon gets a report on fabrikam, from a fabrikam token.
    api = make_api(allowed_tenants=(TENANT, OTHER_TENANT))
    report = {"tenant_id": OTHER_TENANT, "open": 0, "done": 0, "owners": 0}
    downstream.answer(Reply(200, report))
    token = tokens.daemon(tenant="fabrikam")
    r = api.get("/reports/tenant", headers=bearer(token))
    assert (r.status_code, r.json()) == (200, report)
    assert_as_itself(token_service, downstream, token, tenant=OTHER_TENANT)


def test_a_report_on_another_tenant_is_never_passed_on(
    make_api: ApiFactory, downstream: FakeDownstream, tokens: Tokens
) -> None:
    api = make_api(allowed_tenants=(TENANT, OTHER_TENANT))
    downstream.answer(Reply(200, {"tenant_id": OTHER_TENANT, "open": 7, "done": 3, "owners": 2}))
    r = api.get("/reports/tenant", headers=bearer(tokens.daemon()))
    assert r.status_code == 500
    assert r.json() == {
        "error": "server_error",
        "error_description": "Something went wrong on our side.",
        "correlation_id": r.headers["x-correlation-id"],
    }


def test_the_app_token_is_reused_across_requests(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    downstream.answer(Reply(200, {"tenant_id": TENANT, "open": 0, "done": 0, "owners": 0}))
    for token in (tokens.daemon(), tokens.daemon()):
        assert api.get("/reports/tenant", headers=bearer(token)).status_code == 200
    assert len(token_service.client_credentials) == 1
    assert len(downstream.calls) == 2


# -- SCIM users --------------------------------------------------------------------------------------


def test_scim_create_provisions_the_user_downstream(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    downstream.answer(Reply(201, USER))
    token = tokens.provisioner()
    r = scim(api, "POST", "/Users", token, {**NEW_USER, "displayName": "Alice Adams"})

    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == SCIM
    assert r.json() == RESOURCE
    assert r.headers["location"] == RESOURCE["meta"]["location"]
    [received] = downstream.calls
    assert (received.method, received.path) == ("POST", "/users")
    assert received.body == {
        "object_id": OBJECT_ID,
        "user_name": "alice@contoso.test",
        "display_name": "Alice Adams",
        "active": True,
    }
    assert_as_itself(token_service, downstream, token)


@pytest.mark.parametrize("host", ["localhost:8001", "127.0.0.1:8001"])
def test_scim_locations_are_on_the_configured_address_whatever_the_host_header(
    make_api: ApiFactory, downstream: FakeDownstream, tokens: Tokens, host: str
) -> None:
    # Answered under another of its allowed names, the api still links to its configured public address.
    api = make_api(public_url="https://api.contoso.example", allowed_hosts="api.contoso.example,localhost,127.0.0.1")
    downstream.answer(Reply(201, USER), Reply(200, USER))
    location = f"https://api.contoso.example/scim/v2/Users/{USER_ID}"
    created = scim(api, "POST", "/Users", tokens.provisioner(), NEW_USER, headers_host=host)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == created.json()["meta"]["location"] == location
    read = scim(api, "GET", f"/Users/{USER_ID}", tokens.provisioner(), headers_host=host)
    assert read.json()["meta"]["location"] == location
    # A name it was not given is no way in at all.
    assert scim(api, "GET", f"/Users/{USER_ID}", tokens.provisioner(), headers_host="evil.test").status_code == 400


def test_scim_list_pages_and_filters_downstream(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    downstream.answer(Reply(200, {"total": 3, "users": [USER]}))
    token = tokens.provisioner()
    r = scim(
        api,
        "GET",
        "/Users",
        token,
        params={"filter": 'userName eq "alice@contoso.test"', "startIndex": "3", "count": "1"},
    )

    assert r.status_code == 200, r.text
    assert r.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 3,
        "startIndex": 3,
        "itemsPerPage": 1,
        "Resources": [RESOURCE],
    }
    [received] = downstream.calls
    assert (received.method, received.path, received.body) == ("GET", "/users", None)
    assert parse_qsl(received.query) == [("offset", "2"), ("limit", "1"), ("user_name", "alice@contoso.test")]
    assert_as_itself(token_service, downstream, token)


def test_scim_list_by_external_id_asks_downstream_by_object_id(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens
) -> None:
    downstream.answer(Reply(200, {"total": 1, "users": [USER]}))
    r = scim(api, "GET", "/Users", tokens.provisioner(), params={"filter": f'externalId eq "{OBJECT_ID}"'})
    assert r.status_code == 200 and r.json()["Resources"] == [RESOURCE]
    [received] = downstream.calls
    # No count asked: a page of the most downstream-api answers.
    assert parse_qsl(received.query) == [("offset", "0"), ("limit", "100"), ("object_id", OBJECT_ID)]


def test_a_scim_filter_value_can_not_add_parameters_downstream(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens
) -> None:
    downstream.answer(Reply(200, {"total": 0, "users": []}))
    sneaky = f"x&object_id={OBJECT_ID}&limit=100000"
    r = scim(api, "GET", "/Users", tokens.provisioner(), params={"filter": f'userName eq "{sneaky}"', "count": "5"})
    assert r.status_code == 200
    [received] = downstream.calls
    assert parse_qsl(received.query) == [("offset", "0"), ("limit", "5"), ("user_name", sneaky)]


def test_scim_get_reads_the_user_downstream(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    downstream.answer(Reply(200, USER))
    token = tokens.provisioner()
    r = scim(api, "GET", f"/Users/{USER_ID}", token)
    assert (r.status_code, r.json()) == (200, RESOURCE)
    [received] = downstream.calls
    assert (received.method, received.path, received.body) == ("GET", f"/users/{USER_ID}", None)
    assert_as_itself(token_service, downstream, token)


def test_scim_replace_reads_then_changes_the_user_downstream(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    renamed = {**USER, "user_name": "alice.adams@contoso.test", "display_name": None}
    downstream.answer(Reply(200, USER), Reply(200, renamed))
    token = tokens.provisioner()
    r = scim(api, "PUT", f"/Users/{USER_ID}", token, {**NEW_USER, "userName": "alice.adams@contoso.test"})

    assert r.status_code == 200, r.text
    assert r.json()["userName"] == "alice.adams@contoso.test" and "displayName" not in r.json()
    read, change = downstream.calls
    assert (read.method, read.path) == ("GET", f"/users/{USER_ID}")
    assert (change.method, change.path) == ("PATCH", f"/users/{USER_ID}")
    assert change.body == {"user_name": "alice.adams@contoso.test", "display_name": None, "active": True}
    assert_as_itself(token_service, downstream, token)


def test_scim_replace_refuses_a_new_external_id(api: TestClient, downstream: FakeDownstream, tokens: Tokens) -> None:
    downstream.answer(Reply(200, USER))
    other = "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"
    r = scim(api, "PUT", f"/Users/{USER_ID}", tokens.provisioner(), {**NEW_USER, "externalId": other})
    assert r.status_code == 400
    assert r.json()["scimType"] == "mutability"
    assert [c.method for c in downstream.calls] == ["GET"]  # read, never changed


def test_scim_patch_changes_the_user_downstream(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    downstream.answer(Reply(200, {**USER, "active": False}))
    token = tokens.provisioner()
    patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    r = scim(api, "PATCH", f"/Users/{USER_ID}", token, patch)

    assert r.status_code == 200, r.text
    assert r.json() == {**RESOURCE, "active": False}
    [received] = downstream.calls
    assert (received.method, received.path, received.body) == ("PATCH", f"/users/{USER_ID}", {"active": False})
    assert_as_itself(token_service, downstream, token)


def test_scim_delete_deletes_the_user_downstream(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    downstream.answer(Reply(204))
    token = tokens.provisioner()
    r = scim(api, "DELETE", f"/Users/{USER_ID}", token)
    assert (r.status_code, r.content) == (204, b"")
    [received] = downstream.calls
    assert (received.method, received.path, received.body) == ("DELETE", f"/users/{USER_ID}", None)
    assert_as_itself(token_service, downstream, token)


@pytest.mark.parametrize(
    ("reply", "status", "scim_type"),
    [(Reply(404, {"detail": "Not found"}), 404, None), (Reply(409, {"detail": "exists"}), 409, "uniqueness")],
)
def test_scim_maps_downstreams_refusals(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens, reply: Reply, status: int, scim_type: str | None
) -> None:
    downstream.answer(reply)
    r = scim(api, "POST", "/Users", tokens.provisioner(), NEW_USER)
    assert r.status_code == status
    body = r.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == str(status)
    assert body.get("scimType") == scim_type


@pytest.mark.parametrize("user_id", ["not-a-guid", "%2e%2e", "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"])
def test_scim_never_puts_what_is_not_an_id_into_a_downstream_url(
    api: TestClient, downstream: FakeDownstream, tokens: Tokens, user_id: str
) -> None:
    r = scim(api, "GET", f"/Users/{user_id}", tokens.provisioner())
    assert r.status_code == 404
    assert downstream.calls == []


def test_scim_refuses_attributes_it_does_not_own(
    api: TestClient, downstream: FakeDownstream, token_service: FakeTokenService, tokens: Tokens
) -> None:
    r = scim(api, "POST", "/Users", tokens.provisioner(), {**NEW_USER, "tenantId": OTHER_TENANT})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidSyntax"
    assert downstream.calls == [] and token_service.requests == []
