"""Who may call downstream-api, and with what: the token policy and the per-route permissions.

# zt: protect-api
Every token must be signed by a key the authority publishes (found through its discovery document
on first need, see zerotrust.validation.KeySet), issued by an allowed tenant's v2.0 issuer, minted
for this API's application id, within its lifetime, and obtained by an allowed calling application:
the api, on its user's behalf. Scopes are checked per route; no route here accepts app-only tokens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session
from zerotrust.dependencies import require_app_roles, require_scopes, require_user_roles
from zerotrust.principal import Principal
from zerotrust.validation import TokenPolicy

from .db import DatabaseDep, ProvisionedUser
from .settings import Settings

# zt: protected-api-example - downstream-api's permission design, tabled in
# docs/guidance/protected-api-example.md (a test checks the table against these routes): Records.Read
# or Records.ReadWrite to read, Records.ReadWrite to write, delegated tokens from the api only.
READ = ("Records.Read", "Records.ReadWrite")
WRITE = ("Records.ReadWrite",)
# zt: permissions-require-admin-consent - the tenant's records: a scope only an administrator grants.
ORG_READ = ("Records.Read.All",)
# zt: configure-tokens-group-claims-app-roles - admin summaries: a read scope AND the user's Records.Admin role.
ADMIN_ROLES = ("Records.Admin",)


def token_policy(settings: Settings) -> TokenPolicy:  # zt: protect-api
    return TokenPolicy.for_authority(
        settings.authority,
        audience=settings.client_id,
        allowed_tenants=list(settings.allowed_tenant_ids),
        allowed_client_ids=list(settings.allowed_client_ids),
        app_only_client_ids=list(settings.app_only_client_ids),
    )


# zt: developer-strategy-application-permissions - the api's own app-only permissions: the tenant
# report (counts only) and the provisioned users. No user token passes these, no app token the others.
REPORT = ("Records.Report.All",)
MANAGE_USERS = ("Users.Manage",)

DEACTIVATED = (
    "This account has been deactivated by your organization's provisioning service; "
    "ask your administrator to reactivate it."
)


def _deactivated(session: Session, tenant_id: str, object_id: str) -> bool:
    return (
        session.scalar(
            select(ProvisionedUser.active).where(
                ProvisionedUser.tenant_id == tenant_id, ProvisionedUser.object_id == object_id
            )
        )
        is False
    )


def _active(check: Callable[..., Awaitable[Principal]]) -> Callable[..., Awaitable[Principal]]:
    """`check`, then: the user must not be deactivated by provisioning (SCIM) in their tenant.

    # zt: identity-standards-based-development-methodologies
    Checked on every delegated request, here where the data is: a deactivated user's tokens,
    still valid for up to an hour, open nothing from the moment the provisioning service says so.
    A user the provisioning service never mentioned is not refused: the directory is the source
    of who may sign in; provisioning only adds the ability to cut someone off at once.
    """

    # A default rather than Annotated: the annotation would name `check`, a local that postponed
    # annotations can't resolve.
    async def active(db: DatabaseDep, principal: Principal = Depends(check)) -> Principal:
        if await db.run(_deactivated, principal.tid, principal.oid):
            raise HTTPException(403, {"error": "account_deactivated", "error_description": DEACTIVATED})
        return principal

    return active


# zt: developer-strategy-delegated-permission - reads accept either scope, writes Records.ReadWrite only.
# A route's parameter type says which: deny by default, a test checks that every route but /healthz has one.
RecordsReader = Annotated[Principal, Depends(_active(require_scopes(*READ)))]
RecordsWriter = Annotated[Principal, Depends(_active(require_scopes(*WRITE)))]
OrgRecordsReader = Annotated[Principal, Depends(_active(require_scopes(*ORG_READ)))]
RecordsAdmin = Annotated[Principal, Depends(_active(require_user_roles(READ, ADMIN_ROLES)))]
TenantReporter = Annotated[Principal, Depends(require_app_roles(*REPORT))]
UsersManager = Annotated[Principal, Depends(require_app_roles(*MANAGE_USERS))]
