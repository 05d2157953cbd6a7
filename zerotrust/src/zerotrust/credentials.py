"""Secretless client credentials: the workload's managed identity, used as a federated credential;
a certificate where no managed identity exists.

In Azure the platform sets IDENTITY_ENDPOINT / IDENTITY_HEADER (App Service, Container Apps) and
`ManagedIdentityCredential` gets a token for `api://AzureADTokenExchange`; Entra accepts it as the
app registration's client assertion because the registration lists that identity as a federated
identity credential. Locally the emulator plays both parts; the code is the same.

The fallback, for a workload that runs where no managed identity exists (another cloud, a build
agent, a laptop without the emulator's identity endpoint), is a certificate: its public half is
registered on the app registration, its private key stays with the workload (a PEM file here, Key
Vault in Azure). Which one a service uses is configuration (`client_credential`), never a branch
on where it runs. A client secret is never an option.
"""

# region liftable: on-behalf-of (2 of 2) requires: msal, azure-identity, cryptography
from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msal
from azure.core.exceptions import AzureError
from azure.identity import ManagedIdentityCredential
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"  # noqa: S105 - a scope, not a secret  # nosec B105

log = logging.getLogger(__name__)


class CredentialConfigError(ValueError):
    """A credential setting that cannot work; the message says what to change."""


class CredentialUnavailable(ConnectionError):
    """The managed identity could not give a token: no identity endpoint here, or it is down.

    An OSError on purpose: every caller already answers "a dependency can't be reached" for those
    (a clean 503 that recovers by itself, never a 500), and this is that case.
    """


# zt: identity-non-user-applications
# zt: identity-iam-development-best-practices
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
        try:
            token: str = credential.get_token(TOKEN_EXCHANGE_SCOPE).token
        except AzureError as exc:
            # Neither credential is usable: say which setting would fix it, once per failure.
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            log.warning(
                "no managed identity token (%s); where no managed identity exists, configure "
                "the certificate fallback (<SERVICE>_CLIENT_CERTIFICATE_FILE)",
                reason,
            )
            raise CredentialUnavailable(f"managed identity unavailable: {reason}") from None
        return token

    return assertion


# zt: identity-non-user-applications
def certificate_credential(path: Path) -> dict[str, Any]:
    """MSAL's certificate credential from one PEM file holding a private key and its certificate.

    MSAL signs each client assertion with the key and names the certificate by its SHA-256
    thumbprint; the identity provider finds the registered certificate by that thumbprint. The file
    is checked here so a wrong one stops the service at start, not at the first sign-in.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise CredentialConfigError(f"cannot read the client certificate file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise CredentialConfigError(f"the client certificate file {path} is not a regular file")
    if os.name == "posix" and mode & 0o077:
        # As ssh does for its keys: a private key others can read is no longer the workload's alone.
        raise CredentialConfigError(
            f"the client certificate file {path} can be read by other users (mode {mode & 0o777:o}); "
            "make it readable by its owner only: chmod 600"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
        certs = x509.load_pem_x509_certificates(data)
    except (ValueError, TypeError):
        raise CredentialConfigError(
            f"{path} must hold one unencrypted PEM private key (RSA) and its PEM certificate"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialConfigError(f"the private key in {path} must be RSA (Entra signs client assertions with RS256)")
    public = key.public_key().public_numbers()
    matching = [
        c for c in certs if isinstance(pk := c.public_key(), rsa.RSAPublicKey) and pk.public_numbers() == public
    ]
    if not matching:
        raise CredentialConfigError(f"no certificate in {path} matches its private key")
    return {
        "private_key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        # MSAL (1.35+) derives the SHA-256 thumbprint (x5t#S256) from it.
        "public_certificate": matching[0].public_bytes(serialization.Encoding.PEM).decode(),
    }


# zt: identity-non-user-applications
# region quote: client-credential
def client_credential(*, managed_identity_client_id: str | None, certificate_file: Path | None) -> dict[str, Any]:
    """What MSAL's `client_credential` gets, chosen by configuration alone.

    A certificate file configured: the certificate. Otherwise: the managed identity the platform
    provides (or the user-assigned one named), as a federated credential. Both configured is
    refused: a service with two credentials keeps working when one is revoked, which hides a
    credential nobody meant to keep.
    """
    if certificate_file is not None and managed_identity_client_id:
        raise CredentialConfigError(
            "both a managed identity client id and a client certificate file are configured; "
            "set exactly one (the managed identity is the default; the certificate is the fallback "
            "where no managed identity exists)"
        )
    if certificate_file is not None:
        return certificate_credential(certificate_file)
    return {"client_assertion": federated_client_assertion(managed_identity_client_id)}


# endregion


class ConfidentialApps:
    """MSAL confidential client applications for one client id and credential, one per tenant or per user.

    All of them share one HTTP cache, so the authority's discovery documents are fetched once per process
    rather than once per app; each gets a token cache of its own, so one tenant's or user's tokens can
    never be returned for another.
    """

    def __init__(
        self,
        client_id: str,
        authority_host: str,
        credential: Callable[[], str] | Mapping[str, Any],
        *,
        instance_discovery: bool = True,
        client_capabilities: list[str] | None = None,
        http_client: Any = None,
    ) -> None:
        """`authority_host`: the authority without the tenant, e.g. https://login.microsoftonline.com.
        `credential`: MSAL's client_credential (see client_credential), or just the assertion callable.
        `http_client`: MSAL's http client, when not its own (tests hand in one that fails on cue)."""
        self.client_id = client_id
        self.authority_host = authority_host.rstrip("/")
        self._credential = dict(credential) if isinstance(credential, Mapping) else {"client_assertion": credential}
        self._instance_discovery = instance_discovery
        self._capabilities = client_capabilities
        self._http_client = http_client
        self._http_cache: dict[Any, Any] = {}

    def new(self, tenant: str, token_cache: msal.TokenCache | None = None) -> msal.ConfidentialClientApplication:
        """An app at `tenant` (a tenant id, or `organizations`) with `token_cache` (default: a new, empty one)."""
        return msal.ConfidentialClientApplication(
            self.client_id,
            client_credential=self._credential,
            authority=f"{self.authority_host}/{tenant}",
            instance_discovery=self._instance_discovery,
            http_cache=self._http_cache,
            client_capabilities=self._capabilities,
            http_client=self._http_client,
            token_cache=token_cache if token_cache is not None else msal.TokenCache(),
        )


# endregion liftable: on-behalf-of (2 of 2)
