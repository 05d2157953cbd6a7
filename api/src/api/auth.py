"""Who may call the api, and with what: the token policy and the per-route permissions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from zerotrust.dependencies import BearerToken, require_app_roles, require_scopes, require_user_roles
from zerotrust.principal import Principal
from zerotrust.validation import TokenPolicy

from .settings import Settings

# zt: protected-api-example - the api's permission design, as docs/guidance/protected-api-example.md
# tables it (a test checks the table against these routes): Tasks.Read or Tasks.ReadWrite to read,
# Tasks.ReadWrite to write, delegated tokens only, from the calling apps in Settings.allowed_client_ids.
READ = ("Tasks.Read", "Tasks.ReadWrite")
WRITE = ("Tasks.ReadWrite",)
# zt: permissions-require-admin-consent - everyone's tasks in the caller's tenant: a scope only an
# administrator can grant (admin_consent_required in infra/registrations.yaml). Alone: Tasks.Read
# does not widen to the organization, and Tasks.Read.All does not cover a user's own writes.
ORG_READ = ("Tasks.Read.All",)
# zt: configure-tokens-group-claims-app-roles - the admin views: a read scope (the app may act for
# the user) AND the Tasks.Admin app role assigned to the user (the user may administer).
ADMIN_ROLES = ("Tasks.Admin",)


def token_policy(settings: Settings) -> TokenPolicy:  # zt: protect-api
    return TokenPolicy.for_authority(
        settings.authority,
        settings.client_id,
        settings.allowed_tenants,
        settings.allowed_client_ids,
        settings.app_only_client_ids,
    )


# zt: developer-strategy-delegated-permission - read routes accept either scope, writes only ReadWrite.
Reader = Annotated[Principal, Depends(require_scopes(*READ))]
Writer = Annotated[Principal, Depends(require_scopes(*WRITE))]
OrgReader = Annotated[Principal, Depends(require_scopes(*ORG_READ))]
TasksAdmin = Annotated[Principal, Depends(require_user_roles(READ, ADMIN_ROLES))]
# zt: developer-strategy-application-permissions - app-only routes: a daemon's tenant report and
# the provisioning client's SCIM routes. A user's token is refused there (403), theirs everywhere else.
Reporter = Annotated[Principal, Depends(require_app_roles("Tasks.Report.All"))]
Provisioner = Annotated[Principal, Depends(require_app_roles("Users.Provision"))]
# The caller's own token: the assertion for on-behalf-of, never forwarded downstream as is.
IncomingToken = BearerToken
