"""Configuration of the web app (environment variables prefixed WEB_).

Every default is safe for a local run against the identity emulator; the values that are only
acceptable on a laptop are refused when WEB_ENVIRONMENT=production. The registration values
(client id, scopes, redirect URIs, tenant) match infra/registrations.yaml; in Azure they come from
configuration, never from that file. The app never reads AZURE_CLIENT_ID: azure-identity treats it
as a user-assigned managed identity, so the web's own id is WEB_CLIENT_ID.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from zerotrust.identity import certificate_credential

_REPO = Path(__file__).resolve().parents[3]
HOME_TENANT_ID = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
API_APP_ID = "f6016428-a480-44ec-bc23-042b445465fc"


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000

    # Identity provider: the emulator locally, https://login.microsoftonline.com/<tenant-id> in Azure.
    authority: str = f"https://localhost:8443/{HOME_TENANT_ID}"
    # Only Microsoft's own hosts are known to MSAL's instance discovery; the emulator is not.
    instance_discovery: bool = False
    # Origin of the identity provider's browser-facing pages (sign-in, sign-out): the CSP lets forms
    # lead there (sign-out redirects to it). The emulator serves them on plain http on localhost.
    idp_origin: str = "http://localhost:8444"
    # Taken from the OpenID Connect discovery document when not set.
    end_session_endpoint: str | None = None

    # The web app's registration ("application (client) id"); see the module docstring.
    client_id: str = "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"
    # Client id of the user-assigned managed identity whose token is the federated credential;
    # None uses the identity the platform provides (locally: IDENTITY_ENDPOINT/IDENTITY_HEADER).
    managed_identity_client_id: str | None = None
    # The fallback where no managed identity exists: a PEM file with the private key and the
    # certificate registered on the web's app registration (`zt certificate --app web` makes one
    # under .local/). Set this or rely on the managed identity, never both.
    client_certificate_file: Path | None = None
    redirect_uri: str = "http://localhost:8000/auth/callback"
    post_logout_redirect_uri: str = "http://localhost:8000/"
    # zt: identity-supported-account-types - single-tenant by default; `zt run --tenants a,b` lists
    # more (and signs in at /organizations). Users from any other tenant are refused after sign-in
    # (checked on the ID token's tid and iss).
    allowed_tenant_ids: list[str] = Field(default_factory=lambda: [HOME_TENANT_ID])

    api_url: str = "https://localhost:8001"
    # zt: acquire-application-authorization-to-access-resources
    # zt: developer-strategy-delegated-permission - read apart from write: each api route names the
    # narrowest scope it accepts, and the web asks for each only when it needs it.
    # Asked for at sign-in and used for every read: read only. Write is asked for the first time the
    # person writes (incremental consent); the organization view's scope only when it is opened.
    api_scopes: list[str] = Field(default_factory=lambda: [f"api://{API_APP_ID}/Tasks.Read"])
    api_write_scopes: list[str] = Field(default_factory=lambda: [f"api://{API_APP_ID}/Tasks.ReadWrite"])
    # zt: permissions-require-admin-consent - needs a tenant administrator's consent.
    api_org_scopes: list[str] = Field(default_factory=lambda: [f"api://{API_APP_ID}/Tasks.Read.All"])
    # Where a person is sent to ask for that consent: the emulator's admin view locally; in Azure,
    # the app's "Permissions" blade in the Entra admin center (or the tenant's admin consent workflow).
    admin_consent_url: str = "http://localhost:8444/admin"
    api_timeout_seconds: float = 10.0

    # Server-side sessions and the encrypted token caches (SQLite file and its key live here).
    state_dir: Path = _REPO / ".local" / "web"
    session_idle_timeout: int = Field(default=30 * 60, gt=0)
    session_absolute_timeout: int = Field(default=8 * 3600, gt=0)
    # Chrome and Firefox keep Secure cookies on http://localhost; false only for browsers that don't.
    cookie_secure: bool = True

    # The attack lab (/lab): fires the forged tokens of zerotrust.attacks at the api from this server.
    # For a local run against the emulator only (zt run turns it on); refused in production.
    attack_lab: bool = False

    @field_validator("authority")
    @classmethod
    def _https_authority(cls, value: str) -> str:
        if urlsplit(value).scheme != "https":
            raise ValueError("the authority must be https (MSAL refuses anything else)")
        return value.rstrip("/")

    @field_validator("client_certificate_file")
    @classmethod
    def _usable_certificate(cls, value: Path | None) -> Path | None:
        if value is not None:
            certificate_credential(value)  # a wrong file stops the app now, with the reason
        return value

    @field_validator("allowed_tenant_ids", "api_scopes", "api_write_scopes", "api_org_scopes")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _safe_for_environment(self) -> Settings:
        if self.session_idle_timeout > self.session_absolute_timeout:
            raise ValueError("session_idle_timeout must not exceed session_absolute_timeout")
        if self.client_certificate_file is not None and self.managed_identity_client_id:
            raise ValueError(
                "WEB_MANAGED_IDENTITY_CLIENT_ID and WEB_CLIENT_CERTIFICATE_FILE are both set: "
                "choose one credential (the managed identity, or the certificate where none exists)"
            )
        if self.environment != "production":
            return self
        problems = []
        for name in ("redirect_uri", "post_logout_redirect_uri"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname)):
                problems.append(f"{name} must be https (http is for localhost only)")
        for name in ("api_url", "idp_origin"):
            if urlsplit(getattr(self, name)).scheme != "https":
                problems.append(f"{name} must be https in production")
        if self.end_session_endpoint and urlsplit(self.end_session_endpoint).scheme != "https":
            problems.append("end_session_endpoint must be https in production")
        if not self.cookie_secure:
            problems.append("cookie_secure must be true in production")
        if self.attack_lab:
            problems.append("attack_lab must be off in production (it is for the local emulator only)")
        if problems:
            raise ValueError("unsafe for production: " + "; ".join(problems))
        return self

    @property
    def public_origin(self) -> str:
        """This app's own origin, as the browser sees it (from the registered redirect URI)."""
        return origin_of(self.redirect_uri)

    @property
    def session_cookie(self) -> str:
        # __Host-: Secure, Path=/ and no Domain, so no sibling host can set or shadow the cookie.
        return "__Host-session" if self.cookie_secure else "session"

    @property
    def sign_in_cookie(self) -> str:
        return "__Host-signin" if self.cookie_secure else "signin"

    @property
    def sign_in_cookie_samesite(self) -> Literal["none", "lax"]:
        # The identity provider posts its answer back cross-site (form_post), which a SameSite=Lax
        # cookie does not accompany. Browsers take SameSite=None only with Secure.
        return "none" if self.cookie_secure else "lax"

    @property
    def csp(self) -> str:
        return (
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; "
            f"form-action 'self' {origin_of(self.idp_origin)}"
        )
