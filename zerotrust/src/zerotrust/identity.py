"""Secretless client credentials: the workload's managed identity, used as a federated credential.

In Azure the platform sets IDENTITY_ENDPOINT / IDENTITY_HEADER (App Service, Container Apps) and
`ManagedIdentityCredential` gets a token for `api://AzureADTokenExchange`; Entra accepts it as the
app registration's client assertion because the registration lists that identity as a federated
identity credential. Locally the emulator plays both parts; the code is the same.
"""

from __future__ import annotations

from collections.abc import Callable

from azure.identity import ManagedIdentityCredential

TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"  # noqa: S105 - a scope, not a secret


# zt: identity-non-user-applications, zt: identity-iam-development-best-practices
def federated_client_assertion(managed_identity_client_id: str | None = None) -> Callable[[], str]:
    """A callable for MSAL's `client_credential={"client_assertion": ...}`.

    MSAL calls it whenever it needs to authenticate; azure-identity caches the managed-identity
    token and renews it before expiry, so no assertion is ever stored or configured.
    """
    credential = (
        ManagedIdentityCredential(client_id=managed_identity_client_id)
        if managed_identity_client_id
        else ManagedIdentityCredential()
    )

    def assertion() -> str:
        token: str = credential.get_token(TOKEN_EXCHANGE_SCOPE).token
        return token

    return assertion
