"""The OpenAPI schema says what each route needs, and documenting it changed no answer.

The schema is worked out from the routes' own permission checks (Protection.scopes/app_roles),
so it can't say something the code doesn't do; these tests pin what it says for both APIs.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import pytest
from api.main import create_app as create_api
from api.settings import Settings as ApiSettings
from downstream_api.main import create_app as create_downstream
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from zerotrust.openapi import TYPE_EXTENSION, accepted, document_permissions
from zerotrust.protect import Permission, Protection, install
from zerotrust.routecheck import unguarded_routes
from zerotrust.tokens import Principal

pytestmark = pytest.mark.guidance("protected-api-example")

Accepts = dict[tuple[str, str], tuple[str, list[list[str]]]]


def _accepts(schema: dict[str, Any]) -> Accepts:
    """(METHOD, path) -> (token type, the alternatives of the operation's security requirement)."""
    return {
        (method.upper(), path): (op[TYPE_EXTENSION], [entry["bearerAuth"] for entry in op["security"]])
        for path, operations in schema["paths"].items()
        for method, op in operations.items()
    }


class _AnyText:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY_TEXT = _AnyText()
READ_TASKS = ("delegated", [["Tasks.Read"], ["Tasks.ReadWrite"]])
WRITE_TASKS = ("delegated", [["Tasks.ReadWrite"]])
READ_RECORDS = ("delegated", [["Records.Read"], ["Records.ReadWrite"]])
WRITE_RECORDS = ("delegated", [["Records.ReadWrite"]])


SCIM_ROUTES = [
    ("POST", "/scim/v2/Users"),
    ("GET", "/scim/v2/Users"),
    ("GET", "/scim/v2/Users/{user_id}"),
    ("PUT", "/scim/v2/Users/{user_id}"),
    ("PATCH", "/scim/v2/Users/{user_id}"),
    ("DELETE", "/scim/v2/Users/{user_id}"),
]
USERS_ROUTES = [
    ("POST", "/users"),
    ("GET", "/users"),
    ("GET", "/users/{user_id}"),
    ("PATCH", "/users/{user_id}"),
    ("DELETE", "/users/{user_id}"),
]


def test_the_api_schema_lists_the_scopes_each_operation_accepts() -> None:
    schema = create_api(ApiSettings()).openapi()
    assert _accepts(schema) == {
        ("GET", "/tasks"): READ_TASKS,
        ("POST", "/tasks"): WRITE_TASKS,
        ("GET", "/tasks/{task_id}"): READ_TASKS,
        ("PATCH", "/tasks/{task_id}"): WRITE_TASKS,
        ("DELETE", "/tasks/{task_id}"): WRITE_TASKS,
        ("DELETE", "/tasks"): WRITE_TASKS,
        ("GET", "/tasks/shared"): READ_TASKS,
        ("PUT", "/tasks/{task_id}/share"): WRITE_TASKS,
        ("GET", "/me"): READ_TASKS,
        ("GET", "/me/groups"): READ_TASKS,
        ("GET", "/org/tasks"): ("delegated", [["Tasks.Read.All"]]),
        ("GET", "/admin/tasks/summary"): (
            "delegated",
            [["Tasks.Admin", "Tasks.Read"], ["Tasks.Admin", "Tasks.ReadWrite"]],
        ),
        ("GET", "/reports/tenant"): ("app-only", [["Tasks.Report.All"]]),
        **{route: ("app-only", [["Users.Provision"]]) for route in SCIM_ROUTES},
    }


def test_the_paged_lists_document_the_query_their_paging_reads_itself() -> None:
    # paging.page_of reads $top and $skiptoken from the request (cheaper than FastAPI's parameters): the schema
    # must still show them, on the lists and nowhere else.
    def paged(schema: dict[str, Any]) -> dict[tuple[str, str], list[tuple[str, str, Any]]]:
        return {
            (method.upper(), path): [(p["name"], p["in"], p["schema"].get("type")) for p in op["parameters"]]
            for path, operations in schema["paths"].items()
            for method, op in operations.items()
            if any(p["name"].startswith("$") for p in op.get("parameters", []))
        }

    both = [("$top", "query", "integer"), ("$skiptoken", "query", "string")]
    assert paged(create_api(ApiSettings()).openapi()) == {
        ("GET", "/tasks"): both,
        ("GET", "/tasks/shared"): both,
        ("GET", "/org/tasks"): both,
    }
    downstream = paged(create_downstream().openapi())
    assert downstream[("GET", "/records")] == both and len(downstream) >= 3
    top = create_api(ApiSettings()).openapi()["paths"]["/tasks"]["get"]["parameters"][0]
    assert top["required"] is False and top["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 500,
        "default": 100,
    }


def test_an_admin_route_says_which_of_its_names_is_the_users_app_role() -> None:
    get = create_api(ApiSettings()).openapi()["paths"]["/admin/tasks/summary"]["get"]
    assert "`Tasks.Admin` is an app role the signed-in user must be assigned" in get["description"]


def test_a_write_route_does_not_advertise_the_read_scope_its_downstream_hop_also_checks() -> None:
    # POST /tasks runs the write check and, through the downstream hop, the read check; only
    # Tasks.ReadWrite passes both. FastAPI's own scope merging would have listed both scopes as
    # one requirement ("all of these"), which is not what the code enforces.
    post = create_api(ApiSettings()).openapi()["paths"]["/tasks"]["post"]
    assert post["security"] == [{"bearerAuth": ["Tasks.ReadWrite"]}]
    assert "`Tasks.ReadWrite`" in post["description"] and "Tasks.Read`" not in post["description"]
    assert {"401", "403"} <= set(post["responses"])


def test_the_scheme_is_an_http_bearer_token() -> None:
    schemes = create_api(ApiSettings()).openapi()["components"]["securitySchemes"]
    assert schemes == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": ANY_TEXT}
    }


def test_downstream_api_serves_no_schema_but_still_documents_each_operation() -> None:
    app = create_downstream()
    assert app.openapi_url is None
    assert _accepts(app.openapi()) == {
        ("GET", "/me"): READ_RECORDS,
        ("GET", "/me/groups"): READ_RECORDS,
        ("GET", "/records"): READ_RECORDS,
        ("POST", "/records"): WRITE_RECORDS,
        ("GET", "/records/{record_id}"): READ_RECORDS,
        ("PATCH", "/records/{record_id}"): WRITE_RECORDS,
        ("DELETE", "/records/{record_id}"): WRITE_RECORDS,
        ("DELETE", "/records"): WRITE_RECORDS,
        ("GET", "/records/shared"): READ_RECORDS,
        ("PUT", "/records/{record_id}/share"): WRITE_RECORDS,
        ("GET", "/org/records"): ("delegated", [["Records.Read.All"]]),
        ("GET", "/admin/records/summary"): (
            "delegated",
            [["Records.Admin", "Records.Read"], ["Records.Admin", "Records.ReadWrite"]],
        ),
        ("GET", "/reports/tenant"): ("app-only", [["Records.Report.All"]]),
        **{route: ("app-only", [["Users.Manage"]]) for route in USERS_ROUTES},
    }


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([Permission("delegated", ("A", "B"))], ("delegated", [("A",), ("B",)])),
        ([Permission("delegated", ("B",)), Permission("delegated", ("A", "B"))], ("delegated", [("B",)])),
        (
            [Permission("delegated", ("A", "B")), Permission("delegated", ("A", "C"))],
            ("delegated", [("A",), ("B", "C")]),
        ),
        ([Permission("app-only", ("R",))], ("app-only", [("R",)])),
    ],
)
def test_accepted_is_what_passes_every_check(checks: list[Permission], expected: tuple[str, Any]) -> None:
    assert accepted(checks) == expected


def test_a_route_wanting_both_token_types_is_a_bug_the_schema_reports() -> None:
    with pytest.raises(ValueError, match="both delegated and app-only"):
        accepted([Permission("delegated", ("A",)), Permission("app-only", ("R",))])


# -- the same answers as before the schema was documented --------------------------------------


class CountingValidator:
    """Stands in for TokenValidator: any token is the user below; counts the validations."""

    def __init__(self) -> None:
        self.calls = 0

    async def validate(self, token: str) -> Principal:
        self.calls += 1
        return Principal.from_claims(
            {
                "tid": "t",
                "oid": "o",
                "sub": "s",
                "aud": "a",
                "iss": "i",
                "azp": "c",
                "ver": "2.0",
                "scp": "Things.ReadWrite",
                "exp": int(time.time()) + 600,
            }
        )


async def _validator(request: Request) -> Any:
    return request.app.state.validator


protect = Protection(_validator, realm="things")
Reader = Annotated[Principal, Depends(protect.scopes("Things.Read", "Things.ReadWrite"))]
Writer = Annotated[Principal, Depends(protect.scopes("Things.ReadWrite"))]
Daemon = Annotated[Principal, Depends(protect.app_roles("Things.Report.All"))]
BearerToken = Annotated[str, Depends(protect.bearer_token)]


def _reader_again(user: Reader) -> str:
    return user.oid


@pytest.fixture
def small_app() -> tuple[FastAPI, CountingValidator]:
    app = FastAPI()
    install(app)
    document_permissions(app)
    validator = CountingValidator()
    app.state.validator = validator

    @app.post("/things")
    async def add(user: Writer, again: Annotated[str, Depends(_reader_again)], token: BearerToken) -> str:
        return user.oid

    @app.get("/report")
    async def report(app_only: Daemon) -> str:
        return app_only.oid

    return app, validator


@pytest.mark.guidance("protect-api")
def test_the_bearer_answers_are_unchanged(small_app: tuple[FastAPI, CountingValidator]) -> None:
    app, _ = small_app
    with TestClient(app) as client:
        for headers in ({}, {"Authorization": "Basic YWxpY2U6cHc="}, {"Authorization": "Bearertoken"}):
            r = client.post("/things", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"] == 'Bearer realm="things"', headers
        for value in ("Bearer ", "Bearer a b"):
            r = client.post("/things", headers={"Authorization": value})
            assert r.status_code == 400
            assert r.headers["www-authenticate"].startswith('Bearer realm="things", error="invalid_request"')


@pytest.mark.guidance("protect-api")
def test_a_token_is_validated_once_per_request_however_many_checks_use_it(
    small_app: tuple[FastAPI, CountingValidator],
) -> None:
    app, validator = small_app
    with TestClient(app) as client:
        r = client.post("/things", headers={"Authorization": "Bearer x.y.z"})
    assert r.status_code == 200 and validator.calls == 1


def test_the_deny_by_default_check_still_sees_the_checks(small_app: tuple[FastAPI, CountingValidator]) -> None:
    app, _ = small_app
    assert (
        unguarded_routes(app.routes, public={"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
        == []
    )


def test_app_only_routes_are_documented_with_their_app_roles(small_app: tuple[FastAPI, CountingValidator]) -> None:
    app, _ = small_app
    assert _accepts(app.openapi()) == {
        ("POST", "/things"): ("delegated", [["Things.ReadWrite"]]),
        ("GET", "/report"): ("app-only", [["Things.Report.All"]]),
    }
    assert "app role `Things.Report.All`" in app.openapi()["paths"]["/report"]["get"]["description"]
