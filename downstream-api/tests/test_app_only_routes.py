"""downstream-api's app-only routes (tenant report, provisioned users) and the deactivated-user check.

Tokens are minted here (see conftest); fabrikam is allowed as a second tenant so that the
tenant filter itself, not the tenant allowlist, is what keeps its data apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from zerotrust.settings import HOME_TENANT_ID

from .conftest import ALICE, AUTHORITY_HOST, BOB, DOWNSTREAM, OTHER_TENANT_ID, AppFactory, Mint, bearer

pytestmark = pytest.mark.guidance("developer-strategy-application-permissions")

API_SP = "972293a9-cd80-4a39-8f79-c549415936c5"  # the api's own object id in an app-only token

# A fixed id for the parametrized cases: pytest-xdist needs every worker to collect the same ids.
UNKNOWN_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    return make_client(allowed_tenants=(HOME_TENANT_ID, OTHER_TENANT_ID))


@pytest.fixture
def as_app(mint: Mint) -> Callable[..., dict[str, str]]:
    """The api's own app-only token (client credentials, as api-app-only) with these app roles, in a tenant."""

    def headers(*roles: str, tenant: str | None = None) -> dict[str, str]:
        claims: dict[str, Any] = {"scp": None, "idtyp": "app", "roles": list(roles), "oid": API_SP, "sub": API_SP}
        claims["azp"] = DOWNSTREAM.app_caller
        claims |= {"name": None, "preferred_username": None}
        if tenant:
            claims |= {"tid": tenant, "iss": f"{AUTHORITY_HOST}/{tenant}/v2.0"}
        return bearer(mint(**claims))

    return headers


def _add(client: TestClient, headers: dict[str, str], title: str) -> str:
    r = client.post("/records", json={"title": title}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_the_report_counts_the_tokens_tenant_only_and_shows_no_titles(
    client: TestClient, as_user: Callable[..., dict[str, str]], as_app: Callable[..., dict[str, str]]
) -> None:
    first = _add(client, as_user(), "alice's secret")
    _add(client, as_user(BOB), "bob's")
    client.patch(f"/records/{first}", json={"done": True}, headers=as_user())
    fabrikam = as_user(tid=OTHER_TENANT_ID, iss=f"{AUTHORITY_HOST}/{OTHER_TENANT_ID}/v2.0")
    _add(client, fabrikam, "carol's")

    r = client.get("/reports/tenant", headers=as_app("Records.Report.All"))
    assert r.status_code == 200
    assert r.json() == {"tenant_id": r.json()["tenant_id"], "open": 1, "done": 1, "owners": 2}
    assert "secret" not in r.text and ALICE not in r.text
    other = client.get("/reports/tenant", headers=as_app("Records.Report.All", tenant=OTHER_TENANT_ID)).json()
    assert (other["tenant_id"], other["open"], other["done"], other["owners"]) == (OTHER_TENANT_ID, 1, 0, 1)


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/reports/tenant", "Records.Report.All"),
        ("GET", "/users", "Users.Manage"),
        ("POST", "/users", "Users.Manage"),
        ("GET", f"/users/{UNKNOWN_ID}", "Users.Manage"),
        ("PATCH", f"/users/{UNKNOWN_ID}", "Users.Manage"),
        ("DELETE", f"/users/{UNKNOWN_ID}", "Users.Manage"),
    ],
)
def test_app_only_routes_refuse_user_tokens_and_other_roles(
    client: TestClient,
    as_user: Callable[..., dict[str, str]],
    as_app: Callable[..., dict[str, str]],
    method: str,
    path: str,
    role: str,
) -> None:
    # A user's token, even one carrying an app role of that name, is the wrong token type.
    other_role = "Users.Manage" if role == "Records.Report.All" else "Records.Report.All"
    for headers in (as_user(), as_user(roles=[role]), as_app(other_role), as_app()):
        r = client.request(method, path, headers=headers, json={})
        assert r.status_code == 403, (headers, r.text)
        assert r.headers["www-authenticate"] == (
            'Bearer realm="downstream-api", error="insufficient_scope", '
            f'error_description="The token does not grant this operation.", scope="{role}"'
        )


def test_user_routes_refuse_the_apis_app_only_token(client: TestClient, as_app: Callable[..., dict[str, str]]) -> None:
    r = client.get("/records", headers=as_app("Records.Report.All", "Users.Manage"))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def _provision(client: TestClient, headers: dict[str, str], oid: str = ALICE, **fields: Any) -> dict[str, Any]:
    r = client.post("/users", json={"object_id": oid, "user_name": "alice@contoso.test", **fields}, headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_provisioned_users_are_keyed_on_tenant_and_object_id_and_never_cross_tenants(
    client: TestClient, as_app: Callable[..., dict[str, str]]
) -> None:
    contoso, fabrikam = as_app("Users.Manage"), as_app("Users.Manage", tenant=OTHER_TENANT_ID)
    alice = _provision(client, contoso)
    assert alice["object_id"] == ALICE and alice["active"] is True
    assert uuid.UUID(alice["id"]).version == 4 and alice["id"] != ALICE
    # The same object id again in the same tenant: a conflict, whatever the user name says.
    again = client.post("/users", json={"object_id": ALICE, "user_name": "someone-else"}, headers=contoso)
    assert again.status_code == 409
    # The same object id in another tenant is another user; neither tenant sees the other's.
    carol_like = _provision(client, fabrikam)
    assert client.get(f"/users/{carol_like['id']}", headers=contoso).status_code == 404
    assert client.get(f"/users/{alice['id']}", headers=fabrikam).status_code == 404
    assert client.patch(f"/users/{alice['id']}", json={"active": False}, headers=fabrikam).status_code == 404
    assert client.delete(f"/users/{alice['id']}", headers=fabrikam).status_code == 404
    assert [u["id"] for u in client.get("/users", headers=contoso).json()["users"]] == [alice["id"]]
    found = client.get("/users", params={"user_name": "alice@contoso.test"}, headers=contoso).json()
    assert found["total"] == 1 and [u["id"] for u in found["users"]] == [alice["id"]]
    by_oid = client.get("/users", params={"object_id": ALICE}, headers=fabrikam).json()
    assert by_oid["users"][0]["id"] == carol_like["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"object_id": ALICE, "user_name": "a", "tenant_id": OTHER_TENANT_ID},
        {"object_id": ALICE, "user_name": "a", "id": UNKNOWN_ID},
        {"object_id": ALICE, "user_name": "a", "roles": ["Tasks.Admin"]},
        {"object_id": "not-a-guid", "user_name": "a"},
        {"object_id": ALICE, "user_name": "a", "active": "false"},
        {"object_id": ALICE, "user_name": "a\x00b"},
    ],
)
def test_a_user_body_may_not_assign_tenant_id_or_roles(
    client: TestClient, as_app: Callable[..., dict[str, str]], body: dict[str, Any]
) -> None:
    r = client.post("/users", json=body, headers=as_app("Users.Manage"))
    assert r.status_code == 422
    assert client.get("/users", headers=as_app("Users.Manage")).json() == {"total": 0, "users": []}


def test_users_are_listed_a_page_at_a_time_in_a_stable_order(
    client: TestClient, as_app: Callable[..., dict[str, str]]
) -> None:
    contoso = as_app("Users.Manage")
    made = [_provision(client, contoso, str(uuid.uuid4()), user_name=f"user{n}")["id"] for n in range(5)]
    pages = [client.get("/users", params={"offset": o, "limit": 2}, headers=contoso).json() for o in (0, 2, 4)]
    assert [p["total"] for p in pages] == [5, 5, 5]
    assert [u["id"] for p in pages for u in p["users"]] == made
    assert client.get("/users", params={"limit": 0}, headers=contoso).json() == {"total": 5, "users": []}
    assert client.get("/users", params={"offset": 9}, headers=contoso).json() == {"total": 5, "users": []}


@pytest.mark.parametrize("params", [{"limit": 101}, {"limit": -1}, {"offset": -1}, {"offset": "x"}])
def test_a_page_too_large_or_a_bad_offset_is_a_clear_422(
    client: TestClient, as_app: Callable[..., dict[str, str]], params: dict[str, Any]
) -> None:
    r = client.get("/users", params=params, headers=as_app("Users.Manage"))
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


def test_a_deactivated_user_is_refused_keeps_their_data_and_gets_it_back_when_reactivated(
    client: TestClient, as_user: Callable[..., dict[str, str]], as_app: Callable[..., dict[str, str]]
) -> None:
    manage = as_app("Users.Manage")
    record = _add(client, as_user(), "kept")
    alice = _provision(client, manage)
    assert client.get("/records", headers=as_user()).status_code == 200  # provisioned and active: fine
    assert client.patch(f"/users/{alice['id']}", json={"active": False}, headers=manage).json()["active"] is False

    for method, path in (("GET", "/records"), ("GET", f"/records/{record}"), ("GET", "/me")):
        r = client.request(method, path, headers=as_user())
        assert r.status_code == 403
        assert r.json()["detail"]["error"] == "account_deactivated"
        assert "deactivated" in r.json()["detail"]["error_description"]
    assert client.post("/records", json={"title": "new"}, headers=as_user()).status_code == 403
    # Bob, never provisioned, and alice's namesake in another tenant are not affected.
    assert client.get("/records", headers=as_user(BOB)).status_code == 200
    other = as_user(tid=OTHER_TENANT_ID, iss=f"{AUTHORITY_HOST}/{OTHER_TENANT_ID}/v2.0")
    assert client.get("/records", headers=other).status_code == 200

    client.patch(f"/users/{alice['id']}", json={"active": True}, headers=manage)
    assert [r["id"] for r in client.get("/records", headers=as_user()).json()] == [record]


def test_the_deactivation_check_rides_in_the_requests_own_unit_of_work(
    client: TestClient, as_user: Callable[..., dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker-thread hop and one transaction per request that reads data, the check included; a
    route that reads no data still checks, on its own."""
    from downstream_api.db import Database

    units: list[str] = []
    original = Database.run

    async def counted(self: Database, work: Any, *args: Any, **kwargs: Any) -> Any:
        units.append(getattr(work, "__name__", "?"))
        return await original(self, work, *args, **kwargs)

    monkeypatch.setattr(Database, "run", counted)
    assert client.get("/records", headers=as_user()).status_code == 200
    assert units == ["checked"]
    units.clear()
    assert client.get("/me", headers=as_user()).status_code == 200
    assert units == ["checked"]


def test_deleting_a_user_deletes_their_records_and_nobody_elses(
    client: TestClient, as_user: Callable[..., dict[str, str]], as_app: Callable[..., dict[str, str]]
) -> None:
    manage = as_app("Users.Manage")
    _add(client, as_user(), "alice's")
    bobs = _add(client, as_user(BOB), "bob's")
    alice = _provision(client, manage)
    assert client.delete(f"/users/{alice['id']}", headers=manage).status_code == 204
    assert client.get(f"/users/{alice['id']}", headers=manage).status_code == 404
    assert client.get("/records", headers=as_user()).json() == []
    assert [r["id"] for r in client.get("/records", headers=as_user(BOB)).json()] == [bobs]


def test_app_only_tokens_are_taken_from_the_app_only_callers_only(make_client: AppFactory, mint: Mint) -> None:
    app_only = {"scp": None, "idtyp": "app", "roles": ["Records.Report.All"], "oid": API_SP, "sub": API_SP}
    web_app = "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"
    # By default the api is the only caller of either kind, each kind with its own registration.
    client = make_client()
    assert client.get("/reports/tenant", headers=bearer(mint(**app_only, azp=DOWNSTREAM.app_caller))).status_code == 200
    # The client id that calls for users holds no
    # app role here: an app-only token from it is refused, even one carrying the right role.
    for azp in (web_app, DOWNSTREAM.caller):
        refused = client.get("/reports/tenant", headers=bearer(mint(**app_only, azp=azp)))
        assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
    # A deployment that lets the api call with users' tokens only refuses its app-only token.
    users_only = make_client(app_only_client_ids=(web_app,))
    app_token = bearer(mint(**app_only, azp=DOWNSTREAM.app_caller))
    assert users_only.get("/reports/tenant", headers=app_token).status_code == 401
    assert users_only.get("/records", headers=bearer(mint())).status_code == 200
