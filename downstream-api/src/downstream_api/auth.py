"""Who may call downstream-api, and with what: the token policy and the per-route permissions.

# zt: protect-api
Every token must be signed by a key the authority publishes (found through its discovery document
on first need, see zerotrust.validation.KeySet), issued by an allowed tenant's v2.0 issuer, minted
for this API's application id, within its lifetime, and obtained by an allowed calling application:
the api, on its user's behalf. Scopes are checked per route; no route here accepts app-only tokens.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from zerotrust.dependencies import require_scopes, require_user_roles
from zerotrust.principal import Principal
from zerotrust.validation import TokenPolicy

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
    )


# zt: developer-strategy-delegated-permission - reads accept either scope, writes Records.ReadWrite only.
# A route's parameter type says which: deny by default, a test checks that every route but /healthz has one.
RecordsReader = Annotated[Principal, Depends(require_scopes(*READ))]
RecordsWriter = Annotated[Principal, Depends(require_scopes(*WRITE))]
OrgRecordsReader = Annotated[Principal, Depends(require_scopes(*ORG_READ))]
RecordsAdmin = Annotated[Principal, Depends(require_user_roles(READ, ADMIN_ROLES))]
