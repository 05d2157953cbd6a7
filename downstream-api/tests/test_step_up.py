"""Step-up on downstream-api's own token: deleting all of one's records, sharing with a group and the admin
summary need authentication context c1 in `acrs`, checked here as the api checks its own (each tier decides
for itself). Without it: a claims challenge naming c1 to a client that declared cp1, a 403 to any other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from zerotrust.cae import challenged_claims

pytestmark = pytest.mark.guidance("secure-with-cae")

Headers = Callable[..., dict[str, str]]
BOB = "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"
GROUP = "5e6f7081-92a3-44b5-c6d7-e8f90a1b2c3d"
C1 = {"access_token": {"acrs": {"essential": True, "value": "c1"}}}
STEPPED_UP = {"xms_cc": ["cp1"], "acrs": ["c1"]}


def _challenged(r: Any) -> None:
    assert r.status_code == 401, r.text
    header = r.headers["www-authenticate"]
    assert header.startswith('Bearer realm="downstream-api", error="insufficient_claims"'), header
    assert json.loads(challenged_claims(header) or "null") == C1


def _add(client: TestClient, headers: dict[str, str], title: str) -> str:
    r = client.post("/records", json={"title": title}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.mark.parametrize("acrs", [[], ["c2"]], ids=["none", "another-context"])
def test_deleting_all_records_without_c1_is_a_challenge_and_deletes_nothing(
    client: TestClient, as_user: Headers, acrs: list[str]
) -> None:
    _add(client, as_user(), "keep me")
    _challenged(client.delete("/records", headers=as_user(xms_cc=["cp1"], acrs=acrs)))
    refused = client.delete("/records", headers=as_user())  # no cp1: a challenge would be a dead end
    assert refused.status_code == 403 and "c1" in refused.json()["error_description"]
    assert len(client.get("/records", headers=as_user()).json()) == 1


def test_with_c1_all_of_the_callers_records_go_and_no_one_elses(client: TestClient, as_user: Headers) -> None:
    for title in ("one", "two"):
        _add(client, as_user(), title)
    _add(client, as_user(BOB), "bob's")
    assert client.delete("/records", headers=as_user(**STEPPED_UP)).status_code == 204
    assert client.get("/records", headers=as_user()).json() == []
    assert [r["title"] for r in client.get("/records", headers=as_user(BOB)).json()] == ["bob's"]


def test_sharing_with_a_group_needs_c1_and_unsharing_does_not(client: TestClient, as_user: Headers) -> None:
    record = _add(client, as_user(), "lunch")
    member = {"groups": [GROUP]}
    _challenged(
        client.put(f"/records/{record}/share", json={"group_id": GROUP}, headers=as_user(xms_cc=["cp1"], **member))
    )
    shared = client.put(f"/records/{record}/share", json={"group_id": GROUP}, headers=as_user(**STEPPED_UP, **member))
    assert shared.status_code == 200 and shared.json()["shared_with_group"] == GROUP
    unshared = client.put(f"/records/{record}/share", json={"group_id": None}, headers=as_user(**member))
    assert unshared.status_code == 200 and unshared.json()["shared_with_group"] is None


def test_the_admin_summary_needs_c1_as_well_as_the_role(client: TestClient, as_user: Headers) -> None:
    admin = {"scp": "Records.Read", "roles": ["Records.Admin"]}
    _challenged(client.get("/admin/records/summary", headers=as_user(xms_cc=["cp1"], **admin)))
    r = client.get("/admin/records/summary", headers=as_user(**STEPPED_UP, **admin))
    assert r.status_code == 200 and r.json()["owners"] == []
    # The context never stands in for the role.
    no_role = client.get("/admin/records/summary", headers=as_user(scp="Records.Read", **STEPPED_UP))
    assert no_role.status_code == 403 and 'error="insufficient_scope"' in no_role.headers["www-authenticate"]
