"""The emulator's Graph stand-in: the signed-in user's memberships, for tokens minted for Graph only."""

from __future__ import annotations

import json
import ssl
import time

import httpx
import pytest

from tests.authz.chain import DAVE, generated_group
from tests.support.launch import LiveEmulator
from tests.support.tokens import GRAPH_APP_ID, Issuer, pairwise_subject

from .helpers import api_scope, confidential_client, downstream_scope, managed_identity_assertion, sign_in, web_client

pytestmark = pytest.mark.guidance("configure-tokens-group-claims-app-roles")


def _graph_token(live: LiveEmulator, **overrides: object) -> str:
    """Shaped as the emulator mints a delegated Graph token for downstream-api on dave's behalf."""
    issuer = Issuer(live)
    now = int(time.time())
    claims = {
        "aud": GRAPH_APP_ID,
        "iss": issuer.issuer(),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "tid": issuer.tenants["contoso"],
        "oid": DAVE.oid,
        "sub": pairwise_subject(DAVE.oid, GRAPH_APP_ID),
        "scp": "User.Read",
        "azp": live.app_id("downstream-api"),
        "ver": "2.0",
        **overrides,
    }
    return issuer.sign(claims)


def _post(live: LiveEmulator, token: str, base: str | None = None) -> httpx.Response:
    verify = ssl.create_default_context(cafile=live.tls.ca_bundle)
    with httpx.Client(verify=verify, timeout=10) as http:
        return http.post(
            f"{base or live.base}/v1.0/me/getMemberObjects",
            json={"securityEnabledOnly": True},
            headers={"Authorization": f"Bearer {token}"},
        )


def test_dave_gets_all_his_211_groups(live: LiveEmulator) -> None:
    r = _post(live, _graph_token(live))
    assert r.status_code == 200
    groups = r.json()["value"]
    assert len(groups) == 211 and generated_group(137) in groups


def test_a_token_for_another_audience_is_refused(live: LiveEmulator) -> None:
    r = _post(live, _graph_token(live, aud=live.app_id("downstream-api")))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_graph_token_without_a_membership_scope_is_403(live: LiveEmulator) -> None:
    r = _post(live, _graph_token(live, scp="Mail.Read"))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "Authorization_RequestDenied"


def test_no_token_is_401(live: LiveEmulator) -> None:
    verify = ssl.create_default_context(cafile=live.tls.ca_bundle)
    r = httpx.post(f"{live.base}/v1.0/me/getMemberObjects", json={}, verify=verify)
    assert r.status_code == 401


def test_the_plain_http_front_channel_does_not_serve_graph(live: LiveEmulator) -> None:
    r = httpx.post(
        f"{live.front}/v1.0/me/getMemberObjects",
        json={},
        headers={"Authorization": f"Bearer {_graph_token(live)}"},
    )
    assert r.status_code == 403


def test_downstream_api_gets_a_graph_token_on_alices_behalf_with_the_tenants_admin_consent(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real chain: web -> api -> downstream-api -> Graph, each hop on-behalf-of alice."""
    signed_in = sign_in(live, web_client(live, monkeypatch), "alice@contoso.test", [api_scope(live, "Tasks.Read")])
    api = confidential_client(live, "api", {"client_assertion": managed_identity_assertion(live, "api", monkeypatch)})
    down = api.acquire_token_on_behalf_of(signed_in["access_token"], [downstream_scope(live, "Records.Read")])
    assert "access_token" in down, down
    downstream = confidential_client(
        live, "downstream-api", {"client_assertion": managed_identity_assertion(live, "downstream-api", monkeypatch)}
    )
    graph = downstream.acquire_token_on_behalf_of(down["access_token"], ["https://graph.microsoft.com/User.Read"])
    assert "access_token" in graph, graph
    r = _post(live, graph["access_token"])
    assert r.status_code == 200
    assert sorted(r.json()["value"]) == sorted(
        ["1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "2a3b4c5d-6e7f-4081-9213-243546576879"]
    )


# -- the user's groups by name: /me/transitiveMemberOf/microsoft.graph.group ------------------

GROUPS_PATH = "/v1.0/me/transitiveMemberOf/microsoft.graph.group"


def _get(live: LiveEmulator, token: str, url: str) -> httpx.Response:
    verify = ssl.create_default_context(cafile=live.tls.ca_bundle)
    with httpx.Client(verify=verify, timeout=10) as http:
        return http.get(url, headers={"Authorization": f"Bearer {token}"})


def test_user_read_lists_daves_groups_by_id_with_null_names_as_graph_does(live: LiveEmulator) -> None:
    """Graph's "limited information for inaccessible member objects": User.Read may list the memberships,
    not read the groups, so each comes back with its id and a null displayName."""
    r = _get(live, _graph_token(live), f"{live.base}{GROUPS_PATH}?$select=id,displayName&$top=999")
    assert r.status_code == 200
    value = r.json()["value"]
    assert len(value) == 211 and "@odata.nextLink" not in r.json()
    assert {"@odata.type": "#microsoft.graph.group", "id": generated_group(137), "displayName": None} in value


def test_group_member_read_all_reads_the_names_a_page_at_a_time(live: LiveEmulator) -> None:
    token = _graph_token(live, scp="GroupMember.Read.All")
    names: dict[str, str] = {}
    url: str | None = f"{live.base}{GROUPS_PATH}?$select=id,displayName"
    pages = 0
    while url is not None:
        r = _get(live, token, url)
        assert r.status_code == 200, r.text
        names.update({g["id"]: g["displayName"] for g in r.json()["value"]})
        url, pages = r.json().get("@odata.nextLink"), pages + 1
    # Graph's default page is 100: 211 groups are three pages, each link on the same Graph.
    assert pages == 3 and len(names) == 211
    assert names[generated_group(137)] == "project-137"
    assert names["1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"] == "Everyone at Contoso"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("$select=id,mail", "Could not find a property named 'mail'"),
        ("$top=0", "$top must be 1 to 999"),
        ("$top=1000", "$top must be 1 to 999"),
        ("$skiptoken=-1", "$top must be 1 to 999"),
    ],
)
def test_a_bad_query_is_a_400_that_says_what_to_change(live: LiveEmulator, query: str, message: str) -> None:
    r = _get(live, _graph_token(live, scp="GroupMember.Read.All"), f"{live.base}{GROUPS_PATH}?{query}")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_BadRequest"
    assert message in r.json()["error"]["message"]


def test_a_token_that_may_not_list_memberships_is_403(live: LiveEmulator) -> None:
    r = _get(live, _graph_token(live, scp="Mail.Read"), f"{live.base}{GROUPS_PATH}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"


# -- the audit line of each Graph call: the permission it used --------------------------------


def _graph_audit(live: LiveEmulator) -> list[dict[str, object]]:
    path = live.local_dir / "audit" / "graph.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.guidance("overprivileged-permissions")
def test_each_graph_call_writes_the_permission_it_used_least_privileged_first(live: LiveEmulator) -> None:
    before = len(_graph_audit(live))
    both = "User.Read GroupMember.Read.All"
    assert _post(live, _graph_token(live, scp=both)).status_code == 200
    assert _get(live, _graph_token(live, scp=both), f"{live.base}{GROUPS_PATH}?$select=id").status_code == 200
    assert _get(live, _graph_token(live, scp=both), f"{live.base}{GROUPS_PATH}?$top=5").status_code == 200
    assert _get(live, _graph_token(live, scp="Mail.Read"), f"{live.base}{GROUPS_PATH}").status_code == 403
    lines = _graph_audit(live)[before:]
    used = [(line["route"], line["permissions"], line["status"]) for line in lines]
    assert used == [
        # Ids alone: User.Read was enough, though the token held more.
        ("/v1.0/me/getMemberObjects", ["User.Read"], 200),
        ("/v1.0/me/transitiveMemberOf/microsoft.graph.group", ["User.Read"], 200),
        # Names read: a group-reading permission was used.
        ("/v1.0/me/transitiveMemberOf/microsoft.graph.group", ["GroupMember.Read.All"], 200),
    ]
    first = lines[0]
    assert first["service"] == "graph" and first["client_app_id"] == live.app_id("downstream-api")
    assert first["object_id"] == DAVE.oid and first["token_type"] == "delegated"
    assert first["accepted"] == {
        "User.Read": ["User.Read", "GroupMember.Read.All", "User.Read.All", "Directory.Read.All"]
    }
    assert "eyJ" not in json.dumps(lines)


# -- other users' names: /users?$filter=id in (...) --------------------------------------------

ALICE_OID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"
CAROL_OID = "7f8091a2-b3c4-45d6-a7f8-091a2b3c4d5e"  # fabrikam's: not in contoso


def test_user_read_basic_all_names_users_of_the_tokens_tenant_only(live: LiveEmulator) -> None:
    token = _graph_token(live, scp="User.ReadBasic.All")
    query = f"$filter=id in ('{ALICE_OID}', '{DAVE.oid}', '{CAROL_OID}')&$select=id,displayName"
    r = _get(live, token, f"{live.base}/v1.0/users?{query}")
    assert r.status_code == 200, r.text
    assert r.json()["value"] == [
        {"id": ALICE_OID, "displayName": "Alice Adams"},
        {"id": DAVE.oid, "displayName": "Dave Davis"},
    ]


def test_users_need_a_permission_that_reads_other_users(live: LiveEmulator) -> None:
    r = _get(live, _graph_token(live), f"{live.base}/v1.0/users?$filter=id eq '{ALICE_OID}'")
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"


@pytest.mark.parametrize(
    "query",
    [
        "$filter=startswith(displayName,'A')",
        "$filter=id in (" + ",".join([f"'{ALICE_OID}'"] * 16) + ")",
        f"$filter=id eq '{ALICE_OID}'&$select=id,mail",
        "",
    ],
)
def test_users_answer_a_query_it_does_not_take_with_a_clear_400(live: LiveEmulator, query: str) -> None:
    r = _get(live, _graph_token(live, scp="User.ReadBasic.All"), f"{live.base}/v1.0/users?{query}")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert "15" in r.json()["error"]["message"]


@pytest.mark.guidance("permissions-require-admin-consent")
def test_group_names_need_the_administrators_consent(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consent path for GroupMember.Read.All: without the tenant administrator's consent the token
    service refuses downstream-api a token for it, "needs admin approval" (no one else may consent: the
    permission needs an administrator, and downstream-api requires assignment); once the administrator
    consents (Enterprise applications > Permissions, here the emulator's admin view), the names come."""
    live = fresh_emulator
    live.admin("consent/revoke", tenant="contoso", client="downstream-api", resource="graph")
    signed_in = sign_in(live, web_client(live, monkeypatch), "alice@contoso.test", [api_scope(live, "Tasks.Read")])
    api = confidential_client(live, "api", {"client_assertion": managed_identity_assertion(live, "api", monkeypatch)})
    down = api.acquire_token_on_behalf_of(signed_in["access_token"], [downstream_scope(live, "Records.Read")])
    downstream = confidential_client(
        live, "downstream-api", {"client_assertion": managed_identity_assertion(live, "downstream-api", monkeypatch)}
    )
    names_scope = ["https://graph.microsoft.com/GroupMember.Read.All"]
    refused = downstream.acquire_token_on_behalf_of(down["access_token"], names_scope)
    assert refused.get("error") == "invalid_grant" and 90094 in refused.get("error_codes", []), refused

    live.admin("consent/grant", tenant="contoso", client="downstream-api", resource="graph")
    # A client of its own: MSAL answers a request just refused from its throttle cache for a while.
    downstream = confidential_client(
        live, "downstream-api", {"client_assertion": managed_identity_assertion(live, "downstream-api", monkeypatch)}
    )
    granted = downstream.acquire_token_on_behalf_of(down["access_token"], names_scope)
    assert "access_token" in granted, granted
    r = _get(live, granted["access_token"], f"{live.base}{GROUPS_PATH}?$select=id,displayName")
    assert r.status_code == 200
    assert {g["displayName"] for g in r.json()["value"]} == {"Everyone at Contoso", "Engineering"}
