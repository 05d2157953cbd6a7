"""Builders shared by the emulator contract tests: MSAL clients configured as the services are."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
from azure.identity import ManagedIdentityCredential
from cryptography.hazmat.primitives import serialization
from devtools.signin import FormBrowser

from tests.support.launch import LiveEmulator, register_certificate

TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"


def claims_of(token: str) -> dict[str, Any]:
    """Read claims without verification: these tests check what the emulator minted, not trust it."""
    return jwt.decode(token, options={"verify_signature": False})


def managed_identity_assertion(live: LiveEmulator, service: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[], str]:
    """The federated credential: the service's managed identity token, as a callable for MSAL."""
    for k, v in live.managed_identity_env(service).items():
        monkeypatch.setenv(k, v)
    credential = ManagedIdentityCredential()

    def assertion() -> str:
        return credential.get_token(TOKEN_EXCHANGE_SCOPE).token

    return assertion


def confidential_client(
    live: LiveEmulator, app: str, credential: Any, tenant: str = "contoso", **kwargs: Any
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        live.app_id(app),
        client_credential=credential,
        authority=live.authority(tenant),
        instance_discovery=False,
        **kwargs,
    )


def web_client(
    live: LiveEmulator, monkeypatch: pytest.MonkeyPatch, **kwargs: Any
) -> msal.ConfidentialClientApplication:
    return confidential_client(
        live, "web", {"client_assertion": managed_identity_assertion(live, "web", monkeypatch)}, **kwargs
    )


def api_scope(live: LiveEmulator, value: str) -> str:
    return f"api://{live.app_id('api')}/{value}"


def downstream_scope(live: LiveEmulator, value: str) -> str:
    return f"api://{live.app_id('downstream-api')}/{value}"


def sign_in(
    live: LiveEmulator,
    app: msal.ClientApplication,
    user: str,
    scopes: list[str],
    browser: FormBrowser | None = None,
    **flow_kwargs: Any,
) -> dict[str, Any]:
    """The full auth code + PKCE flow, a person submitting the login (and consent) forms."""
    flow = app.initiate_auth_code_flow(scopes, redirect_uri="http://localhost:8000/auth/callback", **flow_kwargs)
    browser = browser or FormBrowser()
    response = browser.sign_in(flow["auth_uri"], user, live.password)
    assert response.status_code == 302, response.text[:500]
    location = response.headers["location"]
    assert location.startswith("http://localhost:8000/auth/callback?")
    auth_response = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, auth_response)
    return result


def certificate_credential(live: LiveEmulator, app: str, folder: Path) -> dict[str, str]:
    """A certificate credential as MSAL takes it: registered with the emulator, the key kept here."""
    key, cert = register_certificate(live.local_dir, app)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {"private_key": key_pem, "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode()}
