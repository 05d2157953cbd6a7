"""Continuous access evaluation, as the emulator plays Entra ID and Graph, driven by unmodified MSAL.

A client declaring cp1 (`client_capabilities=["CP1"]`) gets tokens marked `xms_cc`; Graph re-evaluates a
capable token on every request and answers one older than a critical event with an `insufficient_claims`
challenge; the token endpoint answers an on-behalf-of exchange it can't grant after such an event with
`interaction_required` and the claims to pass on. A client without cp1 sees what it saw before.
"""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

import httpx
import pytest
from devtools.signin import FormBrowser

from tests.support.launch import LiveEmulator
from tests.support.tokens import GRAPH_APP_ID, Issuer, pairwise_subject

from .helpers import (
    api_scope,
    claims_of,
    confidential_client,
    downstream_scope,
    managed_identity_assertion,
    sign_in,
    web_client,
)

pytestmark = pytest.mark.guidance("secure-with-cae")

CP1 = ["CP1"]
ALICE_OID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"


def _graph_token(emu: LiveEmulator, *, capable: bool, scp: str = "User.Read", **changes: Any) -> str:
    """A delegated Graph token for alice as the emulator issues it (its own key), cp1 or not."""
    issuer = Issuer(emu)
    claims: dict[str, Any] = {
        **issuer.claims(_graph_api(), scp=scp, **changes),
        "aud": GRAPH_APP_ID,
        "azp": emu.app_id("downstream-api"),
        "sub": pairwise_subject(ALICE_OID, GRAPH_APP_ID),
    }
    if capable:
        claims["xms_cc"] = ["cp1"]
    return issuer.sign(claims)


def _graph_api() -> Any:
    from tests.support.tokens import apis_at

    return apis_at("https://unused.invalid", "https://unused.invalid")["downstream-api"]


def _graph_me(emu: LiveEmulator, token: str) -> httpx.Response:
    with httpx.Client(verify=ssl.create_default_context(cafile=emu.tls.ca_bundle), timeout=10) as http:
        return http.get(f"{emu.base}/v1.0/me", headers={"Authorization": f"Bearer {token}"})


def _challenged_claims(response: httpx.Response) -> dict[str, Any]:
    header = response.headers["www-authenticate"]
    assert 'error="insufficient_claims"' in header and f'client_id="{GRAPH_APP_ID}"' in header, header
    encoded = header.split('claims="', 1)[1].split('"', 1)[0]
    claims: dict[str, Any] = json.loads(base64.b64decode(encoded))
    return claims


def test_a_capable_client_gets_tokens_marked_cp1_and_one_without_does_not(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    scopes = [api_scope(emu, "Tasks.Read")]
    capable = sign_in(emu, web_client(emu, monkeypatch, client_capabilities=CP1), "alice@contoso.test", scopes)
    plain = sign_in(emu, web_client(emu, monkeypatch), "alice@contoso.test", scopes)
    assert claims_of(capable["access_token"])["xms_cc"] == ["cp1"]
    assert "xms_cc" not in claims_of(plain["access_token"])


def test_client_credentials_honour_the_claims_parameter_too(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same app-only request, with cp1 declared (MSAL sends it as `claims`) and without."""
    credential = {"client_assertion": managed_identity_assertion(live, "api", monkeypatch)}
    scopes = [f"api://{live.app_id('downstream-api')}/.default"]
    # As api-app-only: the api's registration for app-only calls (same managed identity, federated to both).
    capable = confidential_client(live, "api-app-only", credential, client_capabilities=CP1).acquire_token_for_client(
        scopes
    )
    plain = confidential_client(live, "api-app-only", credential).acquire_token_for_client(scopes)
    assert claims_of(capable["access_token"])["xms_cc"] == ["cp1"]
    assert claims_of(capable["access_token"])["idtyp"] == "app"
    assert "xms_cc" not in claims_of(plain["access_token"])


def test_graph_answers_a_capable_token_older_than_a_revocation_with_a_claims_challenge(
    fresh_emulator: LiveEmulator,
) -> None:
    emu = fresh_emulator
    capable, plain = _graph_token(emu, capable=True), _graph_token(emu, capable=False)
    me = _graph_me(emu, capable)
    assert me.status_code == 200 and me.json()["id"] == ALICE_OID and me.json()["userPrincipalName"]

    emu.admin("users/revoke-sessions", upn="alice@contoso.test")

    refused = _graph_me(emu, capable)
    assert refused.status_code == 401
    wanted = _challenged_claims(refused)
    assert wanted["access_token"]["nbf"]["essential"] is True
    assert float(wanted["access_token"]["nbf"]["value"]) >= claims_of(capable)["iat"]
    # Graph enforces revocation only for clients that can answer a challenge; others keep their token
    # until it expires (which is why capable clients get long-lived tokens in Entra, and others don't).
    assert _graph_me(emu, plain).status_code == 200
    # A token issued after the event (in a later second: tokens' times are whole seconds) is fine again.
    after = int(float(wanted["access_token"]["nbf"]["value"])) + 1
    assert _graph_me(emu, _graph_token(emu, capable=True, iat=after, nbf=after)).status_code == 200


def test_graph_challenges_a_disabled_users_capable_token(fresh_emulator: LiveEmulator) -> None:
    emu = fresh_emulator
    token = _graph_token(emu, capable=True)
    emu.admin("users/disable", upn="alice@contoso.test")
    refused = _graph_me(emu, token)
    assert refused.status_code == 401 and _challenged_claims(refused)["access_token"]["nbf"]["essential"]


def test_on_behalf_of_for_a_capable_chain_after_revocation_is_interaction_required_with_claims(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    user = sign_in(
        emu, web_client(emu, monkeypatch, client_capabilities=CP1), "alice@contoso.test", [api_scope(emu, "Tasks.Read")]
    )
    credential = {"client_assertion": managed_identity_assertion(emu, "api", monkeypatch)}
    api = confidential_client(emu, "api", credential, client_capabilities=CP1)
    scopes = [downstream_scope(emu, "Records.Read")]
    granted = api.acquire_token_on_behalf_of(user["access_token"], scopes)
    assert "access_token" in granted and claims_of(granted["access_token"])["xms_cc"] == ["cp1"]

    emu.admin("users/revoke-sessions", upn="alice@contoso.test")

    refused = api.acquire_token_on_behalf_of(user["access_token"], scopes)
    assert refused["error"] == "interaction_required" and refused["error_codes"] == [50173]
    assert json.loads(refused["claims"])["access_token"]["nbf"]["essential"] is True


def test_on_behalf_of_passing_on_a_challenge_needs_an_incoming_token_issued_after_it(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    user = sign_in(
        emu, web_client(emu, monkeypatch, client_capabilities=CP1), "alice@contoso.test", [api_scope(emu, "Tasks.Read")]
    )
    issued = claims_of(user["access_token"])["iat"]
    credential = {"client_assertion": managed_identity_assertion(emu, "api", monkeypatch)}
    api = confidential_client(emu, "api", credential, client_capabilities=CP1)
    later = json.dumps({"access_token": {"nbf": {"essential": True, "value": str(issued + 60)}}})
    refused = api.acquire_token_on_behalf_of(
        user["access_token"], [downstream_scope(emu, "Records.Read")], claims_challenge=later
    )
    assert refused["error"] == "interaction_required" and json.loads(refused["claims"]) == json.loads(later)
    # A claims request the incoming token already satisfies is granted.
    earlier = json.dumps({"access_token": {"nbf": {"essential": True, "value": str(issued - 60)}}})
    granted = api.acquire_token_on_behalf_of(
        user["access_token"], [downstream_scope(emu, "Records.Read")], claims_challenge=earlier
    )
    assert "access_token" in granted, granted


def test_without_cp1_a_revoked_on_behalf_of_is_refused_as_before(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    user = sign_in(emu, web_client(emu, monkeypatch), "alice@contoso.test", [api_scope(emu, "Tasks.Read")])
    api = confidential_client(emu, "api", {"client_assertion": managed_identity_assertion(emu, "api", monkeypatch)})
    emu.admin("users/revoke-sessions", upn="alice@contoso.test")
    refused = api.acquire_token_on_behalf_of(user["access_token"], [downstream_scope(emu, "Records.Read")])
    assert refused["error"] == "invalid_grant" and refused["error_codes"] == [50173] and "claims" not in refused


def test_a_password_reset_is_a_critical_event_too(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    app = web_client(emu, monkeypatch, client_capabilities=CP1)
    signed_in = sign_in(emu, app, "alice@contoso.test", [api_scope(emu, "Tasks.Read")])
    token = _graph_token(emu, capable=True)
    done = emu.admin("users/reset-password", upn="alice@contoso.test")
    assert "sessions revoked" in done["done"]
    assert _challenged_claims(_graph_me(emu, token))["access_token"]["nbf"]["essential"] is True
    # The refresh token from before the reset is void, as after a revocation.
    [account] = app.get_accounts()
    refreshed = app.acquire_token_by_refresh_token(signed_in["refresh_token"], [api_scope(emu, "Tasks.Read")])
    assert refreshed.get("error") == "invalid_grant" and "AADSTS50173" in refreshed["error_description"]
    assert account["username"] == "alice@contoso.test"


def test_a_deleted_user_cant_sign_in_graph_challenges_and_a_restore_brings_the_same_person_back(
    fresh_emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fresh_emulator
    token = _graph_token(emu, capable=True)
    done = emu.admin("users/delete", upn="alice@contoso.test")
    # No app is provisioned on this emulator, and it says so rather than pretending.
    assert done["provisioning"] == "no app is configured for provisioning (EMULATOR_SCIM_URL)"
    assert _challenged_claims(_graph_me(emu, token))["access_token"]["nbf"]["essential"] is True
    app = web_client(emu, monkeypatch, client_capabilities=CP1)
    flow = app.initiate_auth_code_flow(
        [api_scope(emu, "Tasks.Read")], redirect_uri="http://localhost:8000/auth/callback"
    )
    refused = FormBrowser().sign_in(flow["auth_uri"], "alice@contoso.test", emu.password)
    assert refused.status_code == 400 and "AADSTS50034" in refused.text

    listed = emu.administrator.request("GET", "/admin").text
    deleted_section = listed.split("<h3>Deleted users</h3>", 1)[1].split("</table>", 1)[0]
    assert "alice@contoso.test" in deleted_section and 'action="/admin/users/restore"' in deleted_section

    emu.admin("users/restore", upn="alice@contoso.test")
    assert "<h3>Deleted users</h3>" not in emu.administrator.request("GET", "/admin").text
    again = sign_in(emu, app, "alice@contoso.test", [api_scope(emu, "Tasks.Read")])
    assert claims_of(again["access_token"])["oid"] == ALICE_OID
    # A token from before the deletion stays void: restoring brings the person back, not old sessions.
    assert _graph_me(emu, token).status_code == 401


def test_restoring_someone_not_deleted_is_a_clear_400(fresh_emulator: LiveEmulator) -> None:
    r = fresh_emulator.administrator.request("POST", "/admin/users/restore", data={"upn": "alice@contoso.test"})
    assert r.status_code == 400 and "AADSTS50034" in r.json()["error_description"]
