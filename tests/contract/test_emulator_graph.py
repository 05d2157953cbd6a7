"""The emulator's Graph stand-in: the signed-in user's memberships, for tokens minted for Graph only."""

from __future__ import annotations

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
