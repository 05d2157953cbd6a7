"""What the api's routes ask for: the caller's permission, and downstream-api reached on the caller's behalf.

A route's signature says what it needs, e.g. `async def add_task(user: TasksWrite, down: OnBehalfOfCaller)`:
the permission check (deny by default: a test lists routes without one) and the hop, which checks nothing
itself. A write route asks for the write permission only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from zerotrust.correlation import correlation_id
from zerotrust.protect import BearerError, Protection, runs_check
from zerotrust.service import lifespan_clients
from zerotrust.tokens import Principal, TokenValidator

from .downstream import AppHop, Downstream, Hop


@dataclass(frozen=True)
class Clients:
    """What the api holds for its lifetime (built by main.lifespan)."""

    validator: TokenValidator
    downstream: Downstream
    # This api's address as configured (settings.public_base_url): absolute URLs are built from it alone.
    public_url: str


clients = lifespan_clients(Clients)
ClientsDep = Annotated[Clients, Depends(clients)]


async def public_url(request: Request) -> str:
    return (await clients(request)).public_url


PublicUrl = Annotated[str, Depends(public_url)]


async def token_validator(request: Request) -> TokenValidator:
    return (await clients(request)).validator


# zt: protect-api
protect = Protection(token_validator, realm="api")

# zt: protected-api-example
# The api's permission design, as docs/guidance/protected-api-example.md tables it (a test checks the
# table against these routes): Tasks.Read or Tasks.ReadWrite to read, Tasks.ReadWrite to write.
# region quote: permission-sets
READ = ("Tasks.Read", "Tasks.ReadWrite")
WRITE = ("Tasks.ReadWrite",)
# zt: permissions-require-admin-consent
# Everyone's tasks in the caller's tenant: a scope only an administrator can grant. Alone: Tasks.Read
# does not widen to the organization, and Tasks.Read.All does not cover a user's own writes.
ORG_READ = ("Tasks.Read.All",)
# zt: configure-tokens-group-claims-app-roles
# The admin views: a read scope (the app may act for the user) AND the Tasks.Admin app role (the user may).
ADMIN_ROLES = ("Tasks.Admin",)
# endregion

# zt: developer-strategy-delegated-permission
# region quote: delegated-scopes
TasksRead = Annotated[Principal, Depends(protect.scopes(*READ))]
TasksWrite = Annotated[Principal, Depends(protect.scopes(*WRITE))]
# endregion

# zt: zero-trust-token-customization
# Guests are limited: a B2B guest (the optional claim acct=1, which the api's registration asks Entra
# for) keeps her own tasks, but may not read the organization's tasks or share with its groups, whatever
# scopes the app holds: the tenant's data stays its members'. Decided on the validated token only; a
# token whose acct is not an integer never gets here (zerotrust.tokens refuses it as invalid).
# region quote: refuse-guests
GUEST = 1
GUEST_REFUSED = "Guests of this organization may keep their own tasks but not see or share with the organization."


def refuse_guests(principal: Principal) -> None:
    """403 insufficient_scope for a guest, as any other permission the token lacks."""
    if principal.acct == GUEST:
        raise BearerError(403, protect.realm, "insufficient_scope", GUEST_REFUSED)


org_scope_held = protect.scopes(*ORG_READ)


async def org_member(request: Request) -> Principal:
    """Tasks.Read.All, held by a member of the tenant."""
    principal = await org_scope_held(request)
    refuse_guests(principal)
    return principal


runs_check(org_member, org_scope_held)


OrgTasksRead = Annotated[Principal, Depends(org_member)]
# endregion
# zt: secure-with-cae
# Sensitive actions (deleting all of one's tasks, sharing with a group, the admin summary) need the tenant's
# authentication context for them, met with a second factor; its id is the tenant's choice (c1 in the demo).
STEP_UP = "c1"
TasksWriteSteppedUp = Annotated[Principal, Depends(protect.with_context(protect.scopes(*WRITE), STEP_UP))]
TasksAdminSteppedUp = Annotated[
    Principal, Depends(protect.with_context(protect.user_roles(READ, ADMIN_ROLES), STEP_UP))
]
# zt: developer-strategy-application-permissions
# App-only routes (a daemon's tenant report, the provisioning client's SCIM): a user's token gets 403 there.
TenantReporter = Annotated[Principal, Depends(protect.app_roles("Tasks.Report.All"))]
Provisioner = Annotated[Principal, Depends(protect.app_roles("Users.Provision"))]


# Each calls what it needs itself: one dependency node per need (zerotrust.protect, Protection).
async def on_behalf_of_caller(request: Request) -> Hop:
    caller, c = await protect.principal(request), await clients(request)
    # The caller's own token: the assertion for on-behalf-of, never forwarded downstream as is.
    return c.downstream.on_behalf_of(caller, protect.read_bearer(request), correlation_id(request))


async def as_app(request: Request) -> AppHop:
    """The api as itself, for an app-only caller; refused for a user's request (AppHop)."""
    caller, c = await protect.principal(request), await clients(request)
    return c.downstream.as_app(caller, correlation_id(request))


OnBehalfOfCaller = Annotated[Hop, Depends(on_behalf_of_caller)]
AsApp = Annotated[AppHop, Depends(as_app)]
