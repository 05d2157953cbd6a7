"""Assignment required, enforced by the identity provider as Entra enforces it, over HTTP.

Every registration requires assignment (infra/registrations.yaml) but the web app, the one reviewed exception
(people consent to it for themselves). A person nobody assigned is refused at sign-in to an app that requires
it (the authorize endpoint, AADSTS50105, on the identity provider's own page: no code goes back to the app)
and at the token endpoint: for the app they use, for the resource the token is for, and in an
on-behalf-of exchange for the next tier. An application with no app role on a resource that requires
assignment gets no token for it (AADSTS501051), at the token endpoint or the managed identity endpoint.
Assigned people and apps get their tokens, with the baseline `User` role in `roles`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import msal
import pytest
import yaml
from devtools.paths import repo_root
from devtools.signin import FormBrowser

from tests.contract.helpers import (
    api_scope,
    claims_of,
    confidential_client,
    downstream_scope,
    managed_identity_assertion,
    sign_in,
    web_client,
)
from tests.contract.test_emulator_errors import assert_entra_error, client_auth, post_token
from tests.support.launch import LiveEmulator, start_emulator
from tests.support.tokens import ALICE, Issuer, apis_at

pytestmark = [pytest.mark.guidance("app-registration"), pytest.mark.live]

ERIN = {"oid": "06ac4724-c693-4da5-9888-0c6a5157a107", "upn": "erin@contoso.test", "name": "Erin Evans"}
# Two people of the test's own directory: assigned to the web app only, and to the web app and the api only.
WEB_ONLY, NO_DOWNSTREAM = "wendy@contoso.test", "nina@contoso.test"


def _refused_for(body: dict[str, Any], upn: str, app: str) -> None:
    assert body["error_codes"] == [50105], body
    assert f"'{upn}'" in body["error_description"] and app in body["error_description"], body


def test_an_unassigned_member_of_the_tenant_gets_no_token_for_the_api_the_web_app_signs_her_in_for(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The web app is the one reviewed exception (people consent to it for themselves, which Entra refuses for
    # apps that require assignment): she may sign in, but the api requires assignment, so the code's
    # redemption for its scope is refused, naming the api. Her password is right and her account enabled.
    result = sign_in_result(live, monkeypatch, ERIN["upn"])
    assert "access_token" not in result
    _refused_for(result, ERIN["upn"], "Zero Trust Sample - API")


def test_people_may_not_consent_to_an_app_that_requires_assignment(live: LiveEmulator) -> None:
    # As Entra: for such an app only an administrator consents; the person is told it needs admin approval.
    cli = msal.PublicClientApplication(live.app_id("cli"), authority=live.authority(), instance_discovery=False)
    # A scope anyone could consent to for themselves, which no one has granted the CLI (nor pre-authorized).
    flow = cli.initiate_device_flow(scopes=[downstream_scope(live, "Records.Read")])
    alice = "alice@contoso.test"
    page = FormBrowser().approve_device(flow["verification_uri"], flow["user_code"], alice, live.password)
    assert page.status_code == 403 and "Need admin approval" in page.text
    assert "Zero Trust Sample - CLI" in page.text


def test_the_cli_too_refuses_her_and_the_assigned_sign_in(live: LiveEmulator) -> None:
    cli = msal.PublicClientApplication(live.app_id("cli"), authority=live.authority(), instance_discovery=False)
    refused = cli.initiate_device_flow(scopes=[api_scope(live, "Tasks.Read")])
    page = FormBrowser().approve_device(refused["verification_uri"], refused["user_code"], ERIN["upn"], live.password)
    assert page.status_code == 400 and "AADSTS50105" in page.text and "Zero Trust Sample - CLI" in page.text

    flow = cli.initiate_device_flow(scopes=[api_scope(live, "Tasks.Read")])
    FormBrowser().approve_device(flow["verification_uri"], flow["user_code"], "alice@contoso.test", live.password)
    result = cli.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert claims_of(result["access_token"])["roles"] == ["User"]


def test_an_on_behalf_of_exchange_for_someone_not_assigned_is_refused(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token the api could hold for her: minted before an administrator removed her assignment, say.
    issuer, api = Issuer(live), apis_at("https://api.invalid", "https://downstream.invalid")["api"]
    claims = issuer.claims(api, oid=ERIN["oid"], preferred_username=ERIN["upn"], name=ERIN["name"])
    erins = issuer.sign(claims)
    alices = issuer.sign(issuer.claims(api))
    obo = confidential_client(live, "api", {"client_assertion": managed_identity_assertion(live, "api", monkeypatch)})
    refused = obo.acquire_token_on_behalf_of(erins, [downstream_scope(live, "Records.Read")])
    assert refused["error"] == "invalid_grant"
    _refused_for(refused, ERIN["upn"], live.app_id("api"))
    allowed = obo.acquire_token_on_behalf_of(alices, [downstream_scope(live, "Records.Read")])
    assert claims_of(allowed["access_token"])["oid"] == ALICE["oid"]
    assert claims_of(allowed["access_token"])["roles"] == ["User"]


@pytest.mark.parametrize(
    ("client", "resource"),
    [
        # The api's delegated registration holds no app role downstream since the split (api-app-only does).
        ("api", "downstream-api"),
        ("web", "api"),
        ("daemon", "downstream-api"),
    ],
)
def test_an_app_with_no_app_role_on_a_resource_that_requires_assignment_gets_no_token(
    live: LiveEmulator, client: str, resource: str
) -> None:
    form = {
        "grant_type": "client_credentials",
        "scope": f"api://{live.app_id(resource)}/.default",
        **client_auth(live, client),
    }
    body = assert_entra_error(post_token(live, form), 400, "invalid_grant", 501051)
    assert live.app_id(client) in body["error_description"] and live.app_id(resource) in body["error_description"]


def test_apps_assigned_an_app_role_get_it(live: LiveEmulator) -> None:
    for client, identity, resource, roles in (
        ("api-app-only", "api", "downstream-api", ["Records.Report.All", "Users.Manage"]),
        ("daemon", "daemon", "api", ["Tasks.Report.All"]),
        ("provisioner", "provisioner", "api", ["Users.Provision"]),
    ):
        scope = f"api://{live.app_id(resource)}/.default"
        form = {"grant_type": "client_credentials", "scope": scope, **client_auth(live, client, identity)}
        r = post_token(live, form)
        assert r.status_code == 200, r.text
        assert claims_of(r.json()["access_token"])["roles"] == roles


def test_a_managed_identity_with_no_app_role_gets_no_token_for_an_app_that_requires_assignment(
    live: LiveEmulator,
) -> None:
    with live.http() as http:
        r = http.get(
            f"{live.base}/msi/token",
            params={"api-version": "2019-08-01", "resource": f"api://{live.app_id('api')}"},
            headers={"X-IDENTITY-HEADER": live.identity_header("web")},
        )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert r.json()["error_description"].startswith("AADSTS501051:") and "Zero Trust Sample - API" in r.text


def test_the_consent_prompt_links_the_apps_terms_and_privacy_statement(
    emulator_factory: Callable[..., LiveEmulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "{web_origin}" in the registration, filled in with the web app's origin where this run serves it.
    emulator = emulator_factory(web_origin="http://localhost:18000")
    flow = web_client(emulator, monkeypatch).initiate_auth_code_flow(
        [api_scope(emulator, "Tasks.Read")], redirect_uri="http://localhost:8000/auth/callback", prompt="consent"
    )
    browser = FormBrowser()
    login = browser.http.get(flow["auth_uri"])
    prompt = browser.submit(login, {"username": "alice@contoso.test", "password": emulator.password})
    assert prompt.status_code == 200 and "Permissions requested" in prompt.text
    assert 'href="http://localhost:18000/terms"' in prompt.text
    assert 'href="http://localhost:18000/privacy"' in prompt.text


@pytest.fixture(scope="module")
def partly_assigned(tmp_path_factory: pytest.TempPathFactory, live: LiveEmulator) -> Iterator[LiveEmulator]:
    """An emulator whose directory has two more people, each assigned to part of the chain only."""
    root = repo_root()
    demo = yaml.safe_load((root / "identity-emulator" / "demo" / "directory.yaml").read_text())
    people = demo["tenants"]["contoso"]["users"]
    template = next(u for u in people if u["upn"] == ERIN["upn"])
    for upn, oid, assigned in (
        (WEB_ONLY, "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", ["web"]),
        (NO_DOWNSTREAM, "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f60", ["web", "api"]),
    ):
        people.append({**copy.deepcopy(template), "upn": upn, "object_id": oid, "assigned": assigned})
    local = tmp_path_factory.mktemp("partly-assigned")
    (local / "tls").symlink_to(live.local_dir / "tls")
    directory = local / "directory.yaml"
    directory.write_text(yaml.safe_dump(demo))
    emulator = start_emulator(local, directory=str(directory))
    yield emulator
    emulator.stop()


def test_assigned_to_the_app_but_not_the_resource_the_code_is_not_redeemed(
    partly_assigned: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sign-in to the web app succeeds (she is assigned to it); the token for the api does not.
    result = sign_in_result(partly_assigned, monkeypatch, WEB_ONLY)
    assert result["error"] == "invalid_grant"
    _refused_for(result, WEB_ONLY, "Zero Trust Sample - API")


def test_assigned_to_the_api_but_not_downstream_the_exchange_is_refused_naming_downstream(
    partly_assigned: LiveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = sign_in_result(partly_assigned, monkeypatch, NO_DOWNSTREAM)
    assert claims_of(result["access_token"])["roles"] == ["User"]
    obo = confidential_client(
        partly_assigned, "api", {"client_assertion": managed_identity_assertion(partly_assigned, "api", monkeypatch)}
    )
    refused = obo.acquire_token_on_behalf_of(
        result["access_token"], [downstream_scope(partly_assigned, "Records.Read")]
    )
    _refused_for(refused, NO_DOWNSTREAM, "Zero Trust Sample - Downstream API")


def sign_in_result(emulator: LiveEmulator, monkeypatch: pytest.MonkeyPatch, upn: str) -> dict[str, Any]:
    """The web app's sign-in for the api's Tasks.Read, through the emulator's pages; MSAL's result."""
    return sign_in(emulator, web_client(emulator, monkeypatch), upn, [api_scope(emulator, "Tasks.Read")])


def test_the_demo_directory_assigns_every_demo_person_but_erin() -> None:
    demo = yaml.safe_load((repo_root() / "identity-emulator" / "demo" / "directory.yaml").read_text())
    people = [u for t in demo["tenants"].values() for u in t["users"]]
    unassigned = [u["upn"] for u in people if not u.get("assigned")]
    assert unassigned == [ERIN["upn"]]
    assert all(set(u["assigned"]) == {"web", "api", "downstream-api", "cli"} for u in people if u.get("assigned"))
