"""The api's configuration: one class, safe local defaults, unsafe values refused in production."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from zerotrust.identity import certificate_credential

HOME_TENANT = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
API_APP_ID = "f6016428-a480-44ec-bc23-042b445465fc"
WEB_APP_ID = "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"
CLI_APP_ID = "7c3e8a15-4d2b-4f9a-b6e1-0a9d8c7b5e23"
DAEMON_APP_ID = "e4b1c6d2-7f3a-4b8e-9d1c-2a6f5e8b3c47"
PROVISIONER_APP_ID = "3d5e7f90-a1b2-4c3d-8e4f-5a6b7c8d9e0f"
DOWNSTREAM_APP_ID = "56416278-656a-410f-9888-db490850ca20"
_REPO = Path(__file__).resolve().parents[3]


class Settings(BaseSettings):
    # Not AZURE_CLIENT_ID: DefaultAzureCredential would take that for a user-assigned identity.
    model_config = SettingsConfigDict(env_prefix="API_")

    environment: Literal["development", "production"] = "development"
    authority: str = f"https://localhost:8443/{HOME_TENANT}"
    # MSAL's instance discovery asks Microsoft's cloud about the authority host; off for the emulator.
    instance_discovery: bool = False
    client_id: str = API_APP_ID
    allowed_tenants: list[str] = [HOME_TENANT]
    # Who may call this API at all (azp), whatever the token says: the web app and the CLI with a
    # user's (delegated) token; the daemon and the provisioning client with app-only tokens. Each
    # list holds for its token type only, and the routes check the type again (403).
    allowed_client_ids: list[str] = [WEB_APP_ID, CLI_APP_ID]
    app_only_client_ids: list[str] = [DAEMON_APP_ID, PROVISIONER_APP_ID]
    downstream_url: str = "https://localhost:8002"
    downstream_app_id_uri: str = f"api://{DOWNSTREAM_APP_ID}"
    # A user-assigned managed identity's client id, in Azure; locally the identity header selects it.
    managed_identity_client_id: str | None = None
    # The fallback where no managed identity exists: a PEM file with the private key and the
    # certificate registered on the api's app registration (`zt certificate --app api`). Set this
    # or rely on the managed identity, never both.
    client_certificate_file: Path | None = None
    # zt: overprivileged-permissions - one JSON line per authorized request (zerotrust.audit);
    # unset: no audit file. `zt run` sets it under .local/audit/.
    audit_log: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8001
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tenant_id(self) -> str:
        return self.authority.rstrip("/").rsplit("/", 1)[1]

    @property
    def authority_host(self) -> str:
        """The authority without its tenant: app-only tokens are asked for in the caller's tenant."""
        return self.authority.rstrip("/").rsplit("/", 1)[0]

    def downstream_scope(self, value: str) -> str:
        return f"{self.downstream_app_id_uri}/{value}"

    @field_validator("client_certificate_file")
    @classmethod
    def _usable_certificate(cls, value: Path | None) -> Path | None:
        if value is not None:
            certificate_credential(value)  # a wrong file stops the api now, with the reason
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> Settings:
        if self.client_certificate_file is not None and self.managed_identity_client_id:
            raise ValueError(
                "API_MANAGED_IDENTITY_CLIENT_ID and API_CLIENT_CERTIFICATE_FILE are both set: "
                "choose one credential (the managed identity, or the certificate where none exists)"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_in_production(self) -> Settings:
        if self.environment == "production":
            for name, url in (("authority", self.authority), ("downstream_url", self.downstream_url)):
                parts = urlsplit(url)
                if parts.scheme != "https" or parts.hostname in ("localhost", "127.0.0.1", "::1"):
                    raise ValueError(f"API_{name.upper()} must be an https URL of a real host in production")
            if self.instance_discovery is False and "login.microsoftonline.com" in self.authority:
                raise ValueError("API_INSTANCE_DISCOVERY must stay on for Entra ID authorities in production")
        return self
