"""The permission design in docs/guidance/protected-api-example.md is the one the code enforces.

The chapter tables each API's routes (method, accepted scopes or app roles, token type, calling
apps, object-level rule) and the permissions declared but not used yet. Every row is checked here
against the FastAPI apps as built (their routes and the require_scopes/require_app_roles checks
each route runs), the APIs' calling-app allowlists and infra/registrations.yaml, both ways: a
route, a scope or an allowed client added in code without its row fails, and so does a row
describing something the code doesn't do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from api.main import create_app as create_api
from api.settings import Settings as ApiSettings
from downstream_api.main import create_app as create_downstream
from downstream_api.settings import Settings as DownstreamSettings
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from zerotrust.docs import PUBLIC_PATHS as DOCS_PATHS
from zerotrust.openapi import accepted, route_permissions

pytestmark = pytest.mark.guidance("protected-api-example")

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "docs" / "guidance" / "protected-api-example.md"
MANIFEST: dict[str, Any] = yaml.safe_load((ROOT / "infra" / "registrations.yaml").read_text())["applications"]
# Public on purpose: health, and the api docs (the schema says what each route needs, nothing secret).
PUBLIC = {"/healthz", *DOCS_PATHS}

Row = dict[str, str]


def _table(name: str, *, may_be_empty: bool = False) -> list[Row]:
    """The markdown table right after `<!-- permissions: name -->`, as rows keyed by header."""
    lines = CHAPTER.read_text().splitlines()
    start = lines.index(f"<!-- permissions: {name} -->") + 1
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, separator, *rows = table
    assert all(set(cell) <= {"-", ":"} for cell in separator), f"{name}: no header separator"
    assert rows or may_be_empty, f"{name}: the table has no rows"
    return [dict(zip(header, row, strict=True)) for row in rows]


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _alternatives(cell: str) -> list[tuple[str, ...]]:
    """ "`A` or `B and C`"-style cells: alternatives split on " or ", names within one on " and "."""
    return sorted(tuple(sorted(_code(part))) for part in cell.split(" or "))


def _app_name(application_id: str) -> str:
    names = [name for name, app in MANIFEST.items() if app.get("application_id") == application_id]
    assert names, f"{application_id} is not an application of infra/registrations.yaml"
    return names[0]


def _served(app: FastAPI) -> dict[tuple[str, str], Any]:
    """(path, METHOD) -> the route's dependant, for every route but the public ones."""
    served = {}
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.path not in PUBLIC:
            for method in route.methods or ():
                served[(str(route.path_format), method)] = route.dependant
    return served


APIS = {
    "api": (
        lambda: create_api(ApiSettings()),
        lambda: {"delegated": ApiSettings().allowed_client_ids, "app-only": ApiSettings().app_only_client_ids},
    ),
    "downstream-api": (
        create_downstream,
        lambda: {
            "delegated": DownstreamSettings().allowed_client_ids,
            "app-only": DownstreamSettings().app_only_client_ids,
        },
    ),
}


@pytest.mark.parametrize("api", list(APIS))
def test_every_route_has_one_row_and_every_row_a_route(api: str) -> None:
    rows = _table(api)
    documented = [(_code(row["Route"])[0], row["Method"]) for row in rows]
    assert len(documented) == len(set(documented)), f"{api}: a route is tabled twice"
    assert set(documented) == set(_served(APIS[api][0]())), f"{api}: the table and the routes differ"


@pytest.mark.parametrize("api", list(APIS))
def test_each_row_accepts_what_the_routes_checks_accept(api: str) -> None:
    served = _served(APIS[api][0]())
    for row in _table(api):
        key = (_code(row["Route"])[0], row["Method"])
        token_type, alternatives = accepted(route_permissions(served[key]))
        assert (row["Token"], _alternatives(row["Accepts"])) == (token_type, alternatives), key


@pytest.mark.parametrize("api", list(APIS))
def test_calling_apps_are_the_apis_allowlist_for_that_token_type(api: str) -> None:
    allowlists = {kind: {_app_name(client_id) for client_id in ids} for kind, ids in APIS[api][1]().items()}
    for row in _table(api):
        assert {name.strip() for name in row["Calling apps"].split(",")} == allowlists[row["Token"]], row["Route"]


@pytest.mark.parametrize("api", list(APIS))
def test_a_route_with_an_id_says_that_other_peoples_ids_answer_404(api: str) -> None:
    for row in _table(api):
        if "{" in row["Route"]:
            assert "404" in row["Object-level rule"], row


@pytest.mark.parametrize("api", list(APIS))
def test_every_accepted_name_is_declared_by_that_apis_registration(api: str) -> None:
    registration = MANIFEST[api]
    scopes = {s["value"] for s in registration.get("scopes", [])}
    app_roles = {r["value"] for r in registration.get("app_roles", []) if "Application" in r["allowed_member_types"]}
    # A delegated route may also ask for an app role assigned to the user (admin views).
    user_roles = {r["value"] for r in registration.get("app_roles", []) if "User" in r["allowed_member_types"]}
    for row in _table(api):
        declared = scopes | user_roles if row["Token"] == "delegated" else app_roles
        assert set(_code(row["Accepts"])) <= declared, row


def test_declared_but_unused_permissions_are_exactly_those_no_route_accepts() -> None:
    used: set[tuple[str, str]] = set()
    for api, (build, _) in APIS.items():
        for dependant in _served(build()).values():
            used |= {(api, name) for check in route_permissions(dependant) for name in check.any_of}
    declared = {
        (api, item["value"]): kind
        for api in APIS
        for kind, items in (
            ("delegated scope", MANIFEST[api].get("scopes", [])),
            ("app role", MANIFEST[api].get("app_roles", [])),
        )
        for item in items
    }
    rows = {
        (row["API"], _code(row["Permission"])[0]): row["Kind"] for row in _table("declared-not-used", may_be_empty=True)
    }
    assert set(rows) == set(declared) - used
    assert all(rows[key] == declared[key] for key in rows), rows
