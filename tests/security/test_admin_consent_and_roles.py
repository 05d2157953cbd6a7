"""The admin-consent and admin-role routes of both APIs, over HTTP, adversarially.

For each route: the right permission passes; the wrong scope, a missing user role and an app-only
token get 403 insufficient_scope with the exact challenge; another tenant's rows never appear. The
tokens are built with the emulator's own key (tests/support/tokens.py), so each differs from a
real one in exactly the way under test. The api's routes call downstream-api on-behalf-of, which
the emulator grants only after an administrator's tenant-wide consent: the api's tests run on a
stack of their own where that consent is given, and the test before it shows what happens without.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.authz.chain import STEPPED_UP
from tests.downstream.test_downstream_live import downstream_env
from tests.support.launch import LiveEmulator, LiveService, RunningStack
from tests.support.tokens import (
    ALICE,
    Api,
    Issuer,
    apis,
    apis_at,
    build_access_token,
    build_access_token_with_scopes,
    build_app_only_token,
    pairwise_subject,
)

pytestmark = [
    pytest.mark.guidance("permissions-require-admin-consent"),
    pytest.mark.guidance("configure-tokens-group-claims-app-roles"),
]

BOB_OID = "4c5d6e7f-8091-42a3-b4c5-d6e7f8091a2b"
CAROL_OID = "7f8091a2-b3c4-45d6-a7f8-091a2b3c4d5e"
SCOPE_DENIED = "The token does not grant this operation."
ROLE_DENIED = "The signed-in user is not assigned an app role this operation needs."


def challenge(realm: str, scope: str, description: str = SCOPE_DENIED) -> str:
    return f'Bearer realm="{realm}", error="insufficient_scope", error_description="{description}", scope="{scope}"'


def _client(ca_bundle: str | Path) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(ca_bundle)), timeout=15)


def _get(http: httpx.Client, url: str, token: str) -> httpx.Response:
    return http.get(url, headers={"Authorization": f"Bearer {token}"})


# -- downstream-api, allowing two tenants, so that tenant isolation is what is tested ------------------


@pytest.fixture(scope="module")
def two_tenant_downstream(
    live: LiveEmulator, start_service: Callable[..., LiveService], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    env = {
        **downstream_env(live, tmp_path_factory.mktemp("ds-two-tenants")),
        "DOWNSTREAM_ALLOWED_TENANTS": f"{live.info['tenants']['contoso']},{live.info['tenants']['fabrikam']}",
    }
    service = start_service("downstream_api", "DOWNSTREAM", env)
    yield apis_at("https://unused.invalid", service.base)["downstream-api"]
    service.stop()


def _as(live: LiveEmulator, api: Api, who: str, scp: str | None, roles: list[str] | None = None) -> str:
    """A delegated token for `who` (alice, bob or carol, each in their own tenant) with these scopes/roles,
    after a second factor (authentication context c1, which the summary needs) from a cp1 client."""
    issuer = Issuer(live)
    tenant, oid = {"alice": ("contoso", ALICE["oid"]), "bob": ("contoso", BOB_OID), "carol": ("fabrikam", CAROL_OID)}[
        who
    ]
    extra = {"roles": roles} if roles else {}
    return build_access_token_with_scopes(
        live,
        api,
        scp,
        iss=issuer.issuer(tenant),
        tid=issuer.tenants[tenant],
        oid=oid,
        sub=pairwise_subject(oid, api.app_id),
        preferred_username=f"{who}@{tenant}.test",
        **STEPPED_UP,
        **extra,
    )


def test_org_records_hold_the_callers_tenant_only(live: LiveEmulator, two_tenant_downstream: Api) -> None:
    down = two_tenant_downstream
    with _client(live.tls.ca_bundle) as http:
        for who, title in (("alice", "contoso row"), ("bob", "contoso row 2"), ("carol", "fabrikam row")):
            r = http.post(
                down.url("/records"),
                json={"title": title},
                headers={"Authorization": f"Bearer {_as(live, down, who, 'Records.ReadWrite')}"},
            )
            assert r.status_code == 201, r.text
        contoso = _get(http, down.url("/org/records"), _as(live, down, "alice", "Records.Read.All"))
        fabrikam = _get(http, down.url("/org/records"), _as(live, down, "carol", "Records.Read.All"))
    assert contoso.status_code == fabrikam.status_code == 200
    assert {r["owner"] for r in contoso.json()} == {ALICE["oid"], BOB_OID}
    assert {r["title"] for r in contoso.json()} >= {"contoso row", "contoso row 2"}
    assert [(r["owner"], r["title"]) for r in fabrikam.json()] == [(CAROL_OID, "fabrikam row")]


def test_org_records_need_records_read_all_in_a_delegated_token(live: LiveEmulator, two_tenant_downstream: Api) -> None:
    down, url = two_tenant_downstream, two_tenant_downstream.url("/org/records")
    with _client(live.tls.ca_bundle) as http:
        for token in (
            _as(live, down, "alice", "Records.Read"),  # her own records, not the organization's
            _as(live, down, "alice", "Records.ReadWrite"),
            build_app_only_token(live, down, ["Records.Read.All", "Records.Report.All"]),  # no user
        ):
            r = _get(http, url, token)
            assert r.status_code == 403, r.text
            assert r.headers["www-authenticate"] == challenge("downstream-api", "Records.Read.All")


def test_records_summary_needs_the_records_admin_role_and_a_read_scope(
    live: LiveEmulator, two_tenant_downstream: Api
) -> None:
    down, url = two_tenant_downstream, two_tenant_downstream.url("/admin/records/summary")
    with _client(live.tls.ca_bundle) as http:
        # Its own rows, one in each tenant: this test does not lean on another having run first.
        for who, title in (("bob", "bob's row"), ("carol", "carol's row")):
            token = _as(live, down, who, "Records.ReadWrite")
            added = http.post(down.url("/records"), json={"title": title}, headers={"Authorization": f"Bearer {token}"})
            assert added.status_code == 201, added.text
        bob = _get(http, url, _as(live, down, "bob", "Records.Read", ["Records.Admin"]))
        carol = _get(http, url, _as(live, down, "carol", "Records.Read", ["Records.Admin"]))
        no_role = _get(http, url, _as(live, down, "alice", "Records.ReadWrite"))
        other_role = _get(http, url, _as(live, down, "alice", "Records.Read", ["Tasks.Admin"]))
        role_no_scope = _get(http, url, _as(live, down, "bob", "Records.Read.All", ["Records.Admin"]))
        app_only = _get(http, url, build_app_only_token(live, down, ["Records.Admin"]))

    assert bob.status_code == 200
    contoso = live.info["tenants"]["contoso"]
    assert bob.json()["tenant_id"] == contoso
    assert {o["owner"] for o in bob.json()["owners"]} <= {ALICE["oid"], BOB_OID}
    assert CAROL_OID not in bob.text
    assert carol.status_code == 200
    assert carol.json()["tenant_id"] == live.info["tenants"]["fabrikam"]
    assert [o["owner"] for o in carol.json()["owners"]] == [CAROL_OID]  # none of contoso's

    for refused in (no_role, other_role):
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"] == challenge("downstream-api", "Records.Admin", ROLE_DENIED)
    for refused in (role_no_scope, app_only):
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"] == challenge("downstream-api", "Records.Read Records.ReadWrite")


# -- the api, on the session stack (no admin consent) and on its own stack (admin consent given) -------


def test_without_admin_consent_the_apis_own_on_behalf_of_request_is_refused(stack: RunningStack) -> None:
    """A token with Tasks.Read.All passes the api's check, but the api itself may not get
    Records.Read.All for the user until an administrator consented: 403, never a 500 or a 401."""
    api = apis(stack)["api"]
    with _client(stack.info["ca_bundle"]) as http:
        r = _get(http, api.url("/org/tasks"), build_access_token(stack, api, scp="Tasks.Read.All"))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "consent_required"


@pytest.fixture(scope="module")
def consented(consent_stack: RunningStack) -> Iterator[RunningStack]:
    target = {"tenant": "contoso", "client": "web", "resource": "api"}
    admin = consent_stack.administrator
    assert admin.request("POST", "/admin/consent/grant", data=target).status_code == 200
    yield consent_stack
    assert admin.request("POST", "/admin/consent/revoke", data=target).status_code == 200


def test_org_tasks_after_admin_consent(consented: RunningStack) -> None:
    api, down = apis(consented)["api"], apis(consented)["downstream-api"]
    with _client(consented.info["ca_bundle"]) as http:
        # Something of alice's to see, stored straight at downstream-api.
        write = build_access_token(consented, down, scp="Records.ReadWrite")
        posted = http.post(
            down.url("/records"), json={"title": "org-visible"}, headers={"Authorization": f"Bearer {write}"}
        )
        assert posted.status_code == 201, posted.text
        r = _get(http, api.url("/org/tasks"), build_access_token(consented, api, scp="Tasks.Read.All", oid=BOB_OID))
    assert r.status_code == 200, r.text
    assert {"owner": ALICE["oid"], "title": "org-visible"}.items() <= next(
        t for t in r.json() if t["title"] == "org-visible"
    ).items()


def test_org_tasks_refuse_the_wrong_scope_and_app_only_tokens(consented: RunningStack) -> None:
    api = apis(consented)["api"]
    with _client(consented.info["ca_bundle"]) as http:
        for token in (
            build_access_token(consented, api, scp="Tasks.Read"),
            build_access_token(consented, api, scp="Tasks.ReadWrite", roles=["Tasks.Admin"]),
            build_app_only_token(consented, api, ["Tasks.Report.All", "Tasks.Read.All"]),
        ):
            r = _get(http, api.url("/org/tasks"), token)
            assert r.status_code == 403
            assert r.headers["www-authenticate"] == challenge("api", "Tasks.Read.All")


def test_admin_summary_for_bob_and_each_tier_checks_its_own_role(consented: RunningStack) -> None:
    api = apis(consented)["api"]
    url = api.url("/admin/tasks/summary")
    with _client(consented.info["ca_bundle"]) as http:
        # The summary is a sensitive action: every user token here has been through the second factor.
        def token(**claims: Any) -> str:
            return build_access_token(consented, api, **STEPPED_UP, **claims)

        bob = _get(http, url, token(scp="Tasks.Read", oid=BOB_OID, roles=["Tasks.Admin"]))
        alice = _get(http, url, token(scp="Tasks.ReadWrite"))
        # A token claiming Tasks.Admin for alice (the api accepts its signature): downstream-api still
        # decides on its own token, which the emulator issues with alice's real roles (none): refused.
        forged_role = _get(http, url, token(scp="Tasks.Read", roles=["Tasks.Admin"]))
        app_only = _get(http, url, build_app_only_token(consented, api, ["Tasks.Admin", "Tasks.Report.All"]))
        role_no_scope = _get(http, url, token(scp="Tasks.Read.All", oid=BOB_OID, roles=["Tasks.Admin"]))
    assert bob.status_code == 200, bob.text
    assert bob.json()["tenant_id"] == consented.info["tenants"]["contoso"]
    assert alice.status_code == 403
    assert alice.headers["www-authenticate"] == challenge("api", "Tasks.Admin", ROLE_DENIED)
    assert forged_role.status_code == 502 and forged_role.json()["error"] == "bad_gateway"
    for refused in (app_only, role_no_scope):
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"] == challenge("api", "Tasks.Read Tasks.ReadWrite")


def test_carol_of_another_tenant_gets_nothing_of_contosos(consented: RunningStack) -> None:
    """Single-tenant by default: carol's token is refused outright (401) by the api, whatever it holds."""
    api = apis(consented)["api"]
    issuer = Issuer(consented)
    carol = {
        "iss": issuer.issuer("fabrikam"),
        "tid": issuer.tenants["fabrikam"],
        "oid": CAROL_OID,
        "sub": pairwise_subject(CAROL_OID, api.app_id),
    }
    with _client(consented.info["ca_bundle"]) as http:
        org = _get(http, api.url("/org/tasks"), build_access_token(consented, api, scp="Tasks.Read.All", **carol))
        summary = _get(
            http,
            api.url("/admin/tasks/summary"),
            build_access_token(consented, api, scp="Tasks.Read", roles=["Tasks.Admin"], **carol),
        )
    for r in (org, summary):
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith('Bearer realm="api", error="invalid_token"')
        assert ALICE["oid"] not in r.text
