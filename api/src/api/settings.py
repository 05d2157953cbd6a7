"""The api's configuration (API_* variables): the shared API settings plus where downstream-api is."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict
from zerotrust.settings import ApiSettings, Guid, GuidList, is_loopback_host

# The emulator's registrations (infra/registrations.yaml): in Azure, Entra assigns other ids.
API_APP_ID = "f6016428-a480-44ec-bc23-042b445465fc"
API_APP_ONLY_APP_ID = "d81fb773-8357-4308-90ea-443618d80b43"
WEB_APP_ID = "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"
CLI_APP_ID = "7c3e8a15-4d2b-4f9a-b6e1-0a9d8c7b5e23"
DAEMON_APP_ID = "e4b1c6d2-7f3a-4b8e-9d1c-2a6f5e8b3c47"
PROVISIONER_APP_ID = "3d5e7f90-a1b2-4c3d-8e4f-5a6b7c8d9e0f"
DOWNSTREAM_APP_ID = "56416278-656a-410f-9888-db490850ca20"


class Settings(ApiSettings):
    model_config = SettingsConfigDict(env_prefix="API_")

    client_id: Guid = API_APP_ID
    # zt: developer-strategy-application-permissions
    # The api's app-only calls (tenant report, SCIM) go out as another registration, api-app-only: the
    # client that acts for users never also holds application permissions on the same resource. Same
    # credential (the api's managed identity, or its certificate), federated to both registrations.
    app_only_client_id: Guid = API_APP_ONLY_APP_ID
    # Users come through the web app and the CLI (delegated); the daemon and the provisioning client
    # call app-only. Each list holds for its token type only, and the routes check the type again.
    allowed_client_ids: GuidList = (WEB_APP_ID, CLI_APP_ID)
    app_only_client_ids: GuidList = (DAEMON_APP_ID, PROVISIONER_APP_ID)
    port: int = Field(default=8001, ge=1, le=65535)
    downstream_url: str = "https://localhost:8002"
    downstream_app_id_uri: str = f"api://{DOWNSTREAM_APP_ID}"

    @model_validator(mode="after")
    def _two_registrations(self) -> Settings:
        if self.app_only_client_id == self.client_id:
            raise ValueError(
                "API_APP_ONLY_CLIENT_ID must be the api's app-only registration (api-app-only), not API_CLIENT_ID: "
                "one client holding both delegated and application permissions on downstream-api is what the split "
                "prevents"
            )
        return self

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        parts = urlsplit(self.downstream_url)
        if parts.scheme != "https" or is_loopback_host(parts.hostname):
            problems.append("API_DOWNSTREAM_URL must be an https URL of a real host")
        return problems
