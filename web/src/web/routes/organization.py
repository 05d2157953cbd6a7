"""Everyone's tasks in the person's organization: a permission only an administrator can grant.

# zt: permissions-require-admin-consent
The page asks MSAL, silently, for Tasks.Read.All. Until a tenant administrator has consented for
the whole tenant, the token service refuses with AADSTS90094 ("needs admin approval"): the page
then says so, who can grant it and where, instead of sending the person to a prompt they can't
pass. Each visit asks the token service again (force_refresh) rather than reusing a cached token,
so that an administrator's revocation stops this view at the next visit.

An administrator grants it at the identity provider's admin consent endpoint (web/admin_consent.py):
"Ask an administrator to approve" goes there, and the answer comes back to /auth/admin-consent.

MSAL answers a refresh that was just refused from its own cache (its throttling of requests that need the
user): for 15 s at most here (web/token_caches.py, HttpCache), and not at all once an administrator consented
through this app's link, which makes the process forget the refusals it kept. "Try again" is an interactive
request (/organization/ask), which the identity provider, once it has the consent, answers at once without
asking anything.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import admin_consent, api_client, guests
from ..consent import ask_for, needs_admin_approval
from ..dependencies import FRESH_SESSION_SECONDS, ClientsDep, CurrentSession, OptionalSession, SignInRequired
from ..pages import error_page, page
from .tasks import PageToken

router = APIRouter(tags=["organization"])
GUEST_TITLE = "Guests can't see the organization's tasks"


@router.get("/organization")
async def organization(
    request: Request, c: ClientsDep, session: CurrentSession, page_token: PageToken = None
) -> Response:
    if guests.is_guest(session):
        # zt: zero-trust-token-customization
        # The api refuses guests this view whatever the app holds; she hears why, not "needs admin approval".
        return guests.refused(request, GUEST_TITLE)
    got = await c.signin.tokens.acquire(session, list(c.settings.api_org_scopes), force_refresh=True)
    if got is None:
        raise SignInRequired("/organization")
    if got.token is None:
        if needs_admin_approval(got):
            return page(
                request,
                "needs_admin_approval.html",
                403,
                scopes=[s.rsplit("/", 1)[-1] for s in c.settings.api_org_scopes],
                admin_center_url=c.settings.admin_consent_url,
                client_id=c.settings.client_id,
            )
        if time.time() - session.created_at < FRESH_SESSION_SECONDS:
            return error_page(
                request,
                502,
                "No access to your organization's tasks",
                f"The identity provider refused the permission ({got.error}). Try again later.",
            )
        raise SignInRequired("/organization")
    tasks, following = await api_client.org_tasks(c.api, got.token, page_token)
    owners = sorted({t.owner for t in tasks})
    return page(request, "organization.html", tasks=tasks, owners=owners, next_page=following, paged=bool(page_token))


@router.get("/organization/ask")
async def ask(request: Request, c: ClientsDep, session: CurrentSession) -> Response:
    """The identity provider, asked for Tasks.Read.All interactively: it issues it once an
    administrator consented, or shows its own "needs admin approval" page with a way back."""
    return await ask_for(request, c, list(c.settings.api_org_scopes), "/organization")


# zt: permissions-require-admin-consent
@router.get("/organization/admin-consent")
async def ask_an_administrator(request: Request, c: ClientsDep, session: OptionalSession) -> Response:
    """To the admin consent endpoint, where an administrator (not necessarily the person signed in here)
    signs in and grants Tasks.Read.All for the whole tenant, or is refused if they are not one."""
    return admin_consent.start(request, c)
