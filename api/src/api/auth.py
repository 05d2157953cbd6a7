"""Who may call the api, and with what: the token policy and the per-route permissions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from zerotrust.dependencies import BearerToken, require_app_roles, require_scopes
from zerotrust.principal import Principal
from zerotrust.validation import TokenPolicy

from .settings import Settings

# zt: protected-api-example - the api's permission design, as docs/guidance/protected-api-example.md
# tables it (a test checks the table against these routes): Tasks.Read or Tasks.ReadWrite to read,
# Tasks.ReadWrite to write, delegated tokens only, from the calling apps in Settings.allowed_client_ids.
READ = ("Tasks.Read", "Tasks.ReadWrite")
WRITE = ("Tasks.ReadWrite",)


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
# zt: developer-strategy-application-permissions - app-only routes: a daemon's tenant report and
# the provisioning client's SCIM routes. A user's token is refused there (403), theirs everywhere else.
Reporter = Annotated[Principal, Depends(require_app_roles("Tasks.Report.All"))]
Provisioner = Annotated[Principal, Depends(require_app_roles("Users.Provision"))]
# The caller's own token: the assertion for on-behalf-of, never forwarded downstream as is.
IncomingToken = BearerToken
