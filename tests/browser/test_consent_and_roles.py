"""Consent and the admin role in a real browser (Debian's Chromium through Playwright), on a stack of
its own (consent_stack: these tests change what was granted).

- alice's first write shows the consent prompt, for the write scope alone, and then succeeds;
  the Permissions page shows what she granted.
- The organization view before tenant-wide admin consent ("needs admin approval", saying who can
  grant it and where); alice can neither open the emulator's admin view nor grant the consent, at
  the admin consent endpoint or anywhere else; the demo administrator grants it there, from the
  app's link, and alice's view then works; and after they revoke it.
- bob (assigned Tasks.Admin) sees the admin view; alice gets a clear 403 page.

Every response is scanned for tokens as in test_sign_in.py; screenshots in test-artifacts/browser/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.launch import RunningStack
from tests.support.people import ARTIFACTS, Visitor, chromium, confirm_its_you, nav, signed_in

CAROL_OID = "7f8091a2-b3c4-45d6-a7f8-091a2b3c4d5e"
TASK = "Plan the offsite (consent)"


@pytest.fixture(scope="module", autouse=True)
def _fresh_screenshots() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for prefix in ("consent-", "admin-consent-", "roles-"):
        for old in ARTIFACTS.glob(f"{prefix}*.png"):
            old.unlink()


@pytest.mark.guidance("acquire-application-authorization-to-access-resources")
@pytest.mark.guidance("identity")
def test_alices_first_write_asks_for_write_then_succeeds(consent_stack: RunningStack) -> None:
    with chromium() as browser:
        alice = signed_in(browser, consent_stack, "alice@contoso.test", "consent-01-alice")
        page = alice.page
        nav(page, "Tasks")
        expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
        page.get_by_label("New task").fill(TASK)
        page.get_by_role("button", name="Add").click()

        # The emulator's consent page, for the write scope alone; read was granted at sign-in.
        expect(page.get_by_role("heading", name="Permissions requested")).to_be_visible()
        asked = page.locator("ul.scopes").first
        expect(asked).to_contain_text("Tasks.ReadWrite")
        expect(asked).to_contain_text("Read, create, change and delete your tasks.")
        expect(asked.locator("li")).to_have_count(1)
        expect(page.locator("ul.scopes.granted")).to_contain_text("Tasks.Read")
        assert page.url.startswith(consent_stack.info["emulator_front_channel"])
        alice.shot("consent-02-alice-asked-for-write")
        page.get_by_role("button", name="Accept").click()

        # Back at the app, the write done (once), on the task list.
        expect(page.get_by_role("heading", name="Your tasks")).to_be_visible()
        task = page.locator("ul.tasks li").filter(has_text=TASK)
        expect(task).to_have_count(1)
        alice.shot("consent-03-alice-write-done")

        # The next write asks nothing.
        task.get_by_role("button", name="Complete").click()
        expect(task).to_have_class(re.compile(r"\bdone\b"))
        assert page.url == f"{consent_stack.web}/tasks"

        # What she granted, as the app holds it.
        nav(page, "Permissions")
        expect(page.get_by_role("heading", name="What you granted this app")).to_be_visible()
        rows = page.locator("table.permissions tbody tr")
        expect(rows.filter(has_text="Tasks.ReadWrite")).to_contain_text("yes")
        expect(rows.filter(has_text="Tasks.Read.All")).to_contain_text("no")
        expect(page.locator("ul.held")).to_contain_text("Tasks.ReadWrite")
        alice.shot("consent-04-alice-permissions")
        alice.assert_nothing_leaked()
        alice.close()


def _consent_in_admin_view(page: Page, stack: RunningStack, button: str) -> None:
    page.goto(stack.info["emulator_admin"])
    page.get_by_label("Tenant").select_option("contoso")
    page.get_by_label("Client app").select_option("web")
    page.get_by_label("Resource").select_option("api")
    page.get_by_role("button", name=button).click()
    expect(page).to_have_url(re.compile(r"/admin\?done="))


@pytest.mark.guidance("permissions-require-admin-consent")
def test_alice_cannot_grant_tenant_wide_consent_an_administrator_can_at_the_admin_consent_endpoint(
    consent_stack: RunningStack,
) -> None:
    stack = consent_stack
    front = stack.info["emulator_front_channel"]
    # Start from no tenant-wide consent, whatever ran before on this stack.
    target = {"tenant": "contoso", "client": "web", "resource": "api"}
    assert stack.administrator.request("POST", "/admin/consent/revoke", data=target).is_success

    with chromium() as browser:
        alice = signed_in(browser, stack, "alice@contoso.test", "admin-consent-01-alice")
        page = alice.page
        nav(page, "Organization")
        needs = page.get_by_role("heading", name="Needs admin approval")
        expect(needs).to_be_visible()
        main = page.get_by_role("main")
        expect(main).to_contain_text("Tasks.Read.All")
        expect(main).to_contain_text("Global Administrator")  # who can grant it
        alice.shot("admin-consent-02-needs-approval")

        # The emulator's admin view: her sign-in session there is hers, and she is no administrator.
        page.goto(stack.info["emulator_admin"])
        refused = page.get_by_role("heading", name="Administrators only")
        expect(refused).to_be_visible()
        expect(page.get_by_role("main")).to_contain_text("alice@contoso.test has no administrator role")
        alice.shot("admin-consent-03-alice-refused-admin-view")
        # Nor does its sign-in let her in, nor does a form post grant anything.
        page.get_by_role("link", name="Sign in with an administrator account").click()
        page.get_by_label("Email or username").fill("alice@contoso.test")
        page.get_by_label("Password").fill(stack.info["demo_password"])
        page.get_by_role("button", name="Sign in").click()
        expect(refused).to_be_visible()
        grant = page.request.post(f"{front}/admin/consent/grant", form=target)
        assert grant.status == 403, grant.text()

        # The admin consent endpoint, from the app's page: signed in as herself, she is refused there too.
        page.goto(f"{stack.web}/organization")
        page.get_by_role("link", name="Ask an administrator to approve").click()
        expect(page.get_by_role("heading", name="Need admin approval")).to_be_visible()
        expect(page.get_by_role("main")).to_contain_text("You are signed in as alice@contoso.test")
        expect(page.get_by_role("main")).to_contain_text("AADSTS90094")
        alice.shot("admin-consent-04-alice-refused-admin-consent")
        page.get_by_role("link", name="Return to the application without granting consent").click()
        expect(page.get_by_role("heading", name="Admin approval not given")).to_be_visible()
        expect(page.get_by_role("main")).to_contain_text("AADSTS90094")
        page.goto(f"{stack.web}/organization")
        expect(needs).to_be_visible()

        # The administrator, in a browser of their own, through the same link.
        admin = Visitor(browser, stack, "admin@contoso.test")
        admin.page.goto(f"{stack.web}/organization/admin-consent")
        expect(admin.page.get_by_role("heading", name="Sign in")).to_be_visible()
        admin.page.get_by_label("Email or username").fill("admin@contoso.test")
        admin.page.get_by_label("Password").fill(stack.info["demo_password"])
        admin.shot("admin-consent-05-administrator-signs-in")
        admin.page.get_by_role("button", name="Sign in").click()
        expect(admin.page.get_by_role("heading", name="Permissions requested")).to_be_visible()
        expect(admin.page.get_by_role("main")).to_contain_text("Accept for your organization")
        expect(admin.page.locator("ul.scopes")).to_contain_text("Tasks.Read.All")
        admin.shot("admin-consent-06-administrator-consents")
        admin.page.get_by_role("button", name="Accept").click()
        expect(admin.page.get_by_role("heading", name="Admin approval given")).to_be_visible()
        expect(admin.page.get_by_role("main")).to_contain_text("Tasks.Read.All")
        expect(admin.page.get_by_role("main")).to_contain_text(stack.info["tenants"]["contoso"])
        assert admin.page.url.startswith(f"{stack.web}/auth/admin-consent?"), admin.page.url
        admin.shot("admin-consent-07-approval-given")
        # The admin view shows the grant, to them.
        admin.page.goto(stack.info["emulator_admin"])
        expect(admin.page.locator("table").filter(has_text="admin (tenant-wide)")).to_contain_text("Tasks.Read.All")

        # alice's Organization page works at once, though it was refused moments ago: MSAL kept that refusal
        # (for up to a minute, unbounded), and the consent coming back through the web made it forget it.
        page.goto(f"{stack.web}/organization")
        expect(page.get_by_role("heading", name="Your organization's tasks")).to_be_visible()
        expect(main).to_contain_text("Only your tenant's tasks")
        expect(main).not_to_contain_text(CAROL_OID)
        alice.shot("admin-consent-08-organization")

        # Revoked by the administrator: the next visit asks the token service again, which refuses.
        _consent_in_admin_view(admin.page, stack, "Revoke consent")
        admin.shot("admin-consent-09-revoked")
        page.goto(f"{stack.web}/organization")
        expect(needs).to_be_visible()

        # Asking interactively now shows the identity provider's own page, with a way back.
        page.get_by_role("link", name="Try again").click()
        expect(page.get_by_role("heading", name="Need admin approval")).to_be_visible()
        expect(page.get_by_role("main")).to_contain_text("AADSTS90094")
        alice.shot("admin-consent-10-emulator-needs-approval")
        page.get_by_role("link", name="Return to the application without granting consent").click()
        expect(needs).to_be_visible()
        for visitor in (alice, admin):
            visitor.assert_nothing_leaked()
            visitor.close()


@pytest.mark.guidance("configure-tokens-group-claims-app-roles")
def test_bob_sees_the_admin_view_alice_does_not(consent_stack: RunningStack) -> None:
    with chromium() as browser:
        bob = signed_in(browser, consent_stack, "bob@contoso.test", "roles-01-bob")
        nav(bob.page, "Admin")
        confirm_its_you(bob, "roles-01b-bob-confirms-its-him")  # the summary is a sensitive action
        expect(bob.page.get_by_role("heading", name="Admin: tasks per person")).to_be_visible()
        expect(bob.page.get_by_role("main")).to_contain_text(consent_stack.info["tenants"]["contoso"])
        expect(bob.page.get_by_role("main")).not_to_contain_text(CAROL_OID)
        bob.shot("roles-02-bob-admin-view")
        bob.assert_nothing_leaked()
        bob.close()

        alice = signed_in(browser, consent_stack, "alice@contoso.test", "roles-03-alice")
        nav(alice.page, "Admin")
        expect(alice.page.get_by_role("heading", name="Admins only")).to_be_visible()
        expect(alice.page.get_by_role("main")).to_contain_text(
            "This view needs the Tasks.Admin role, assigned by an administrator."
        )
        expect(alice.page.get_by_role("main")).to_contain_text("HTTP 403")
        alice.shot("roles-04-alice-refused")
        alice.assert_nothing_leaked()
        alice.close()
