"""Single-tenant by default; a multi-tenant mode with an allowlist, where tenants never mix.

carol is from fabrikam. Every tier checks `tid` against its allowlist and the issuer against that
tenant's own issuer (zerotrust.tokens), so a fabrikam token is refused until fabrikam is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.authz.chain import ALICE, CAROL, CONTOSO, FABRIKAM, Chain, start_chain
from tests.support.launch import LiveEmulator, LiveService, start_emulator, start_web
from tests.support.people import Person, Visitor, accept_if_asked, chromium

pytestmark = pytest.mark.guidance("identity-supported-account-types")


@pytest.mark.parametrize(("service", "path"), [("api", "/tasks"), ("downstream-api", "/records")])
def test_carol_is_refused_by_both_apis_in_the_default_single_tenant_mode(chain: Chain, service: str, path: str) -> None:
    r = chain.call(service, "GET", path, chain.user_token(service, CAROL))
    assert r.status_code == 401
    realm = chain.apis[service].realm
    assert r.headers["www-authenticate"] == (
        f'Bearer realm="{realm}", error="invalid_token", error_description="The token\'s tenant is not allowed."'
    )


@pytest.fixture(scope="module")
def multi(
    live: LiveEmulator,
    start_service: Callable[..., LiveService],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Chain]:
    """As `zt run --tenants contoso,fabrikam` sets it up: the registrations multi-tenant at the
    identity provider, fabrikam on every tier's allowlist."""
    local = tmp_path_factory.mktemp("multi-tenant")
    (local / "tls").symlink_to(live.local_dir / "tls")
    emulator = start_emulator(local, multi_tenant_apps="web,api,downstream-api")
    try:
        yield start_chain(emulator, start_service, local, tenants=[CONTOSO, FABRIKAM])
    finally:
        emulator.stop()


def test_in_multi_tenant_mode_carol_uses_the_app_and_sees_only_her_tasks(multi: Chain) -> None:
    carol, alice = multi.user_token("api", CAROL), multi.user_token("api", ALICE)
    assert multi.call("api", "GET", "/tasks", carol).json() == []
    hers = multi.call("api", "POST", "/tasks", carol, {"title": "fabrikam plan"})
    assert hers.status_code == 201, hers.text
    alices = multi.call("api", "POST", "/tasks", alice, {"title": "contoso plan"}).json()
    assert [t["title"] for t in multi.call("api", "GET", "/tasks", carol).json()] == ["fabrikam plan"]
    assert [t["title"] for t in multi.call("api", "GET", "/tasks", alice).json()] == ["contoso plan"]
    # A contoso record id is 404 to her, at both tiers, as any unknown id would be.
    assert multi.call("api", "GET", f"/tasks/{alices['id']}", carol).status_code == 404
    down = multi.user_token("downstream-api", CAROL)
    assert multi.call("downstream-api", "GET", f"/records/{alices['id']}", down).status_code == 404
    assert multi.call("downstream-api", "DELETE", f"/records/{alices['id']}", down).status_code == 404
    # Her own /me names her tenant at both tiers: the chain kept her identity.
    me = multi.call("api", "GET", "/me", carol).json()
    assert me["api"]["tenant_id"] == me["downstream_api"]["tenant_id"] == FABRIKAM


def test_in_multi_tenant_mode_the_same_object_id_in_another_tenant_is_someone_else(multi: Chain) -> None:
    alice = multi.user_token("downstream-api", ALICE)
    record = multi.call("downstream-api", "POST", "/records", alice, {"title": "alice's in contoso"}).json()
    # alice's oid, carol's tenant: a token only a forger or a colliding directory could hold.
    twin = ALICE.__class__(**{**ALICE.__dict__, "tid": FABRIKAM})
    other = multi.user_token("downstream-api", twin)
    assert multi.call("downstream-api", "GET", f"/records/{record['id']}", other).status_code == 404
    assert multi.call("downstream-api", "GET", "/records", other).json() == []


def test_an_issuer_of_another_tenant_cannot_vouch_for_an_allowed_tid(multi: Chain) -> None:
    # fabrikam is allowed, but its issuer may not speak for contoso.
    token = multi.user_token("api", ALICE, iss=f"{multi.emulator.authority('fabrikam')}/v2.0")
    r = multi.call("api", "GET", "/tasks", token)
    assert r.status_code == 401
    assert "The token's issuer is not trusted." in r.headers["www-authenticate"]


@pytest.fixture
def web_at(tmp_path: Path) -> Iterator[Callable[..., LiveService]]:
    """`web_at(emulator, api_url, tenants)`: `python -m web` signing in at `emulator`, as zt run
    starts it: at /organizations with an allowlist when more than one tenant is allowed."""
    started: list[LiveService] = []

    def start(emulator: LiveEmulator, api_url: str, tenants: list[str]) -> LiveService:
        authority = emulator.authority() if len(tenants) == 1 else f"{emulator.base}/organizations"
        web = start_web(
            emulator,
            tmp_path / f"web-{len(started)}",
            authority=authority,
            api_url=api_url,
            allowed_tenants=",".join(tenants),
        )
        started.append(web)
        return web

    yield start
    for web in started:
        web.stop()


def _sign_in(person: Person, web: LiveService, emulator: LiveEmulator, upn: str) -> httpx.Response:
    r = person.get(f"{web.base}/auth/login?next=%2Ftasks")
    assert r.status_code == 302, r.text[:300]
    action, fields = person.sign_in_at_emulator(r.headers["location"], emulator.password, upn)
    return person.post(action, fields)


def test_at_the_web_carol_is_refused_with_a_clear_403_unless_her_tenant_is_allowed(
    multi: Chain, web_at: Callable[..., LiveService]
) -> None:
    # The registrations are multi-tenant; one deployment allows fabrikam, the other doesn't.
    organizations = web_at(multi.emulator, multi.api.base, [CONTOSO, FABRIKAM])
    refused_web = web_at(multi.emulator, multi.api.base, [CONTOSO, "00000000-0000-4000-8000-00000000000a"])

    # She signs in at /organizations, and the web app's own allowlist refuses her tenant: 403.
    person = Person()
    r = _sign_in(person, refused_web, multi.emulator, "carol@fabrikam.test")
    assert r.status_code == 403
    assert "Your organization is not allowed to use this app" in r.text and FABRIKAM in r.text
    assert person.jar.get("__Host-session") is None

    # Allowed: she signs in and sees her own tasks (none of contoso's) through the whole chain.
    multi.call("api", "POST", "/tasks", multi.user_token("api", ALICE), {"title": "contoso secret"})
    person = Person()
    r = _sign_in(person, organizations, multi.emulator, "carol@fabrikam.test")
    assert r.status_code == 303, r.text[:500]
    tasks = person.get(f"{organizations.base}/tasks")
    assert tasks.status_code == 200, tasks.text[:500]
    assert "Carol Clark" in tasks.text and "contoso secret" not in tasks.text


@dataclass(frozen=True)
class _Site:
    """What a browser Visitor needs to know of a deployment: the web app and the emulator's front door."""

    web: str
    info: dict[str, Any]


def test_in_chromium_carol_signs_in_at_organizations_only_where_fabrikam_is_allowed(
    multi: Chain, web_at: Callable[..., LiveService]
) -> None:
    organizations = web_at(multi.emulator, multi.api.base, [CONTOSO, FABRIKAM])
    refused_web = web_at(multi.emulator, multi.api.base, [CONTOSO, "00000000-0000-4000-8000-00000000000b"])
    multi.call("api", "POST", "/tasks", multi.user_token("api", ALICE), {"title": "contoso only (browser)"})
    info = {"emulator_front_channel": multi.emulator.front, "demo_password": multi.emulator.password}
    with chromium() as browser:
        refused = Visitor(browser, _Site(refused_web.base, info), "carol@fabrikam.test")
        refused.open_web_app()
        refused.sign_in("tenants-01-carol-not-allowed")
        # The identity provider signs her in (and asks her consent, the first time); the web app's own
        # allowlist is what refuses her tenant.
        refusal = refused.page.get_by_role("heading", name="Your organization is not allowed to use this app")
        accept_if_asked(refused, refusal, "tenants-01-carol-consent")
        expect(refused.page.locator("main")).to_contain_text(FABRIKAM)
        assert not refused.has_session()
        refused.shot("tenants-02-carol-refused")

        carol = Visitor(browser, _Site(organizations.base, info), "carol@fabrikam.test")
        carol.open_web_app()
        carol.sign_in("tenants-03-carol")
        carol.finish_sign_in("tenants-04-carol")
        carol.page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks", exact=True).click()
        expect(carol.page.get_by_role("heading", name="Your tasks")).to_be_visible()
        expect(carol.page.locator("main")).not_to_contain_text("contoso only (browser)")
        carol.shot("tenants-05-carol-sees-only-fabrikam")
        for visitor in (refused, carol):
            visitor.assert_nothing_leaked()
            visitor.close()
