"""What downstream-api's routes ask for: the caller's permission, the database, the caller's groups.

# zt: protect-api
Every token must be signed by a key the authority publishes, issued by an allowed tenant's v2.0 issuer,
minted for this API, within its lifetime, and obtained by an allowed calling application: the api, on
its user's behalf (or as itself, for the app-only routes). Scopes and roles are checked per route: a
route's parameter type says which (deny by default: a test lists routes without one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.routing import APIRoute
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from zerotrust.cae import bearer_refusal
from zerotrust.groups import GroupResolver, GroupsUnavailable
from zerotrust.names import UserNames
from zerotrust.onbehalf import OboError, OnBehalfOf
from zerotrust.protect import Check, Protection, runs_check
from zerotrust.service import lifespan_clients
from zerotrust.tokens import Principal, TokenValidator

from .db import Database, ProvisionedUser

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Clients:
    """What downstream-api holds for its lifetime (built by main.lifespan)."""

    validator: TokenValidator
    database: Database
    groups: GroupResolver
    obo: OnBehalfOf
    people: UserNames | None = None  # other users' display names (Graph), for labels


clients = lifespan_clients(Clients)
ClientsDep = Annotated[Clients, Depends(clients)]


async def token_validator(request: Request) -> TokenValidator:
    return (await clients(request)).validator


class UnitOfWork:
    """The database as one request sees it: `run(work, ...)` as Database.run, in the caller's tenant (row-level
    security), and, for a user whose request must not come from a deactivated account (`active`), that
    check first, in the same transaction."""

    def __init__(self, db: Database, request: Request) -> None:
        self.db, self.request = db, request

    async def run(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        # The caller's tenant, from its validated token, declared for the transaction (row-level security);
        # none when no token was validated (then no tenant's rows are seen).
        principal: Principal | None = getattr(self.request.state, "principal", None)
        tenant = principal.tid if principal is not None else None
        caller: tuple[str, str] | None = getattr(self.request.state, "active_check", None)
        self.request.state.active_check = None

        def checked(session: Session) -> T:
            self.db.declare_tenant(session, tenant)
            if caller is not None and _deactivated(session, *caller):
                raise HTTPException(403, {"error": "account_deactivated", "error_description": DEACTIVATED})
            return work(session, *args, **kwargs)

        return await self.db.run(checked)


async def database(request: Request) -> UnitOfWork:
    return UnitOfWork((await clients(request)).database, request)


DatabaseDep = Annotated[UnitOfWork, Depends(database)]


def _uses_database(route: Any) -> bool:
    """The route asks for the database (so its first unit of work can carry the deactivation check)."""
    known: bool | None = getattr(route, "_zt_uses_database", None)
    if known is None:

        def found(dependant: Any) -> bool:
            return dependant.call is database or any(found(d) for d in dependant.dependencies)

        known = isinstance(route, APIRoute) and found(route.dependant)
        route._zt_uses_database = known
    return known


protect = Protection(token_validator, realm="downstream-api")

# zt: protected-api-example
# downstream-api's permission design, tabled in docs/guidance/protected-api-example.md (a test checks
# the table against these routes): Records.Read or Records.ReadWrite to read, Records.ReadWrite to write.
READ = ("Records.Read", "Records.ReadWrite")
WRITE = ("Records.ReadWrite",)
# zt: permissions-require-admin-consent
# The tenant's records: a scope only an administrator grants.
ORG_READ = ("Records.Read.All",)
# zt: configure-tokens-group-claims-app-roles
# Admin summaries: a read scope AND the user's Records.Admin role.
ADMIN_ROLES = ("Records.Admin",)
# zt: developer-strategy-application-permissions
# The api's own app-only permissions: the tenant report (counts only) and the provisioned users.
REPORT = ("Records.Report.All",)
MANAGE_USERS = ("Users.Manage",)

DEACTIVATED = (
    "This account has been deactivated by your organization's provisioning service; "
    "ask your administrator to reactivate it."
)


# Built once: making a SELECT costs more than running it (~60 us of SQLAlchemy a request), and this one runs on
# every delegated request. One column, on the transaction's connection: no ORM loading to add to it.
_ACTIVE = select(ProvisionedUser.active).where(
    ProvisionedUser.tenant_id == bindparam("tenant_id"), ProvisionedUser.object_id == bindparam("object_id")
)


def _deactivated(session: Session, tenant_id: str, object_id: str) -> bool:
    found = session.connection().scalar(_ACTIVE, {"tenant_id": tenant_id, "object_id": object_id})
    return found is False


def active(check: Check) -> Check:
    """`check`, then: the user must not be deactivated by provisioning (SCIM) in their tenant.

    # zt: identity-standards-based-development-methodologies
    Checked on every delegated request, where the data is: a deactivated user's tokens, still valid for
    up to an hour, open nothing from the moment the provisioning service says so. A user provisioning
    never mentioned is not refused: the directory says who may sign in; provisioning can cut one off.
    """

    async def still_active(request: Request) -> Principal:
        principal = await check(request)
        request.state.active_check = (principal.tid, principal.oid)
        # A route that works on the data checks in its own transaction (UnitOfWork.run): no second thread
        # hop, no second transaction. Any other route checks here, on its own.
        if not _uses_database(request.scope.get("route")):
            await UnitOfWork((await clients(request)).database, request).run(lambda _session: None)
        return principal

    runs_check(still_active, check)
    return still_active


# zt: developer-strategy-delegated-permission
RecordsRead = Annotated[Principal, Depends(active(protect.scopes(*READ)))]
RecordsWrite = Annotated[Principal, Depends(active(protect.scopes(*WRITE)))]
OrgRecordsRead = Annotated[Principal, Depends(active(protect.scopes(*ORG_READ)))]
# zt: secure-with-cae
# Sensitive actions need the tenant's authentication context for them (a second factor), checked here on
# this tier's own token as the api checks its own: the api asks for it in the on-behalf-of exchange.
STEP_UP = "c1"
RecordsWriteSteppedUp = Annotated[Principal, Depends(active(protect.with_context(protect.scopes(*WRITE), STEP_UP)))]
RecordsAdminSteppedUp = Annotated[
    Principal, Depends(active(protect.with_context(protect.user_roles(READ, ADMIN_ROLES), STEP_UP)))
]
TenantReporter = Annotated[Principal, Depends(protect.app_roles(*REPORT))]
UsersManager = Annotated[Principal, Depends(protect.app_roles(*MANAGE_USERS))]


class CallerGroups:
    """The caller's groups as this tier resolves them: the groups claim of its own token, or Graph on
    overage (on the user's behalf). The api forwards no group list to trust."""

    def __init__(self, c: Clients, principal: Principal, token: str) -> None:
        self.c, self.principal, self.token = c, principal, token

    async def ids(self) -> frozenset[str]:
        # zt: configure-tokens-group-claims-app-roles
        return await self._graph(self.c.groups.groups)

    async def names(self) -> dict[str, str]:
        """Display names of the caller's groups, by id, as far as Graph lets this tier read them."""
        return await self._graph(self.c.groups.names)

    async def people(self, object_ids: list[str]) -> dict[str, str]:
        """Display names of these users of the caller's tenant, by object id, as far as Graph tells."""
        people = self.c.people
        if people is None:
            return {}
        return await self._graph(lambda principal, token: people.names(principal, token, object_ids))

    async def _graph(self, ask: Callable[[Principal, str], Awaitable[T]]) -> T:
        try:
            return await ask(self.principal, self.token)
        except OboError as exc:
            # zt: secure-with-cae
            # Graph wants a fresh sign-in: nothing held for this user is used again, and the caller hears
            # a claims challenge of this tier's own (if it declared cp1), never Graph's as it came.
            self.c.obo.forget(self.principal)
            raise bearer_refusal(exc, self.principal, protect.realm) from None
        except GroupsUnavailable:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "Your group memberships can't be read right now; try again shortly.",
                headers={"Retry-After": "5"},
            ) from None


async def caller_groups(request: Request) -> CallerGroups:
    principal = await protect.principal(request)
    return CallerGroups(await clients(request), principal, protect.read_bearer(request))


Groups = Annotated[CallerGroups, Depends(caller_groups)]
