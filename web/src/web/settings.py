"""Configuration of the web app (WEB_* variables): the shared service settings plus sign-in, the api's scopes
and the session store. Registration values match infra/registrations.yaml; in Azure they come from
configuration, never from that file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from zerotrust.cae import CAPABILITIES
from zerotrust.credentials import client_credential
from zerotrust.settings import Guid, ServiceSettings, TextList, is_loopback_host

from .signin import SignInConfig

_REPO = Path(__file__).resolve().parents[3]
WEB_APP_ID = "1bfffa1d-5b3b-44d5-a14d-ff982dd305d0"
API_APP_ID = "f6016428-a480-44ec-bc23-042b445465fc"
DOWNSTREAM_APP_ID = "56416278-656a-410f-9888-db490850ca20"
SQLITE_STORE = "sqlite"
REDIS_SCHEMES = ("redis", "rediss")
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_")

    client_id: Guid = WEB_APP_ID
    port: int = Field(default=8000, ge=1, le=65535)
    # Origin of the identity provider's browser-facing pages (sign-in, sign-out): the CSP lets forms lead
    # there. The emulator serves them on plain http on localhost.
    idp_origin: str = "http://localhost:8444"
    # Taken from the OpenID Connect discovery document when not set.
    end_session_endpoint: str | None = None
    redirect_uri: str = "http://localhost:8000/auth/callback"
    post_logout_redirect_uri: str = "http://localhost:8000/"

    api_url: str = "https://localhost:8001"
    # zt: acquire-application-authorization-to-access-resources
    # zt: developer-strategy-delegated-permission
    # Read apart from write: each api route names the narrowest scope it accepts, and the web asks for each
    # only when it needs it: read at sign-in, write at the first write (incremental consent), the
    # organization view's scope when it is opened.
    api_scopes: TextList = (f"api://{API_APP_ID}/Tasks.Read",)
    api_write_scopes: TextList = (f"api://{API_APP_ID}/Tasks.ReadWrite",)
    # zt: permissions-require-admin-consent
    api_org_scopes: TextList = (f"api://{API_APP_ID}/Tasks.Read.All",)
    # The admin center, named on the "needs admin approval" page beside the admin consent endpoint (which the
    # app builds from idp_origin): the emulator's admin view locally; in Azure, the Entra admin center.
    admin_consent_url: str = "http://localhost:8444/admin"
    api_timeout_seconds: float = 10.0
    # The apps of this deployment by application id, as registered (infra/registrations.yaml; in Azure, set from
    # the registrations Terraform creates): names on the chain page, ids a click away. Not from Graph: reading
    # service principals takes Application.Read.All, an administrator's permission, far beyond a label.
    app_names: dict[str, str] = Field(
        default_factory=lambda: {
            WEB_APP_ID: "Zero Trust Sample - Web",
            API_APP_ID: "Zero Trust Sample - API",
            DOWNSTREAM_APP_ID: "Zero Trust Sample - Downstream API",
        }
    )
    # zt: secure-with-cae
    # How often a signed-in session's pages ask Graph (a CAE resource) whether the user may still sign in: at
    # most once per this many seconds per session (0: every page). Graph learns of a revocation within
    # minutes in Entra; a page every few seconds adds little to that, and a Graph round trip per page a lot.
    graph_check_seconds: float = Field(default=30.0, ge=0, le=300)

    # The workshop's Markdown and diagrams the app shows at /guide (routes/guide.py): the clone's docs/, and
    # in the image /app/docs (web/Dockerfile copies them there, beside the code, so the default holds).
    docs_dir: Path = _REPO / "docs"

    # Server-side sessions and the sealed token caches (SQLite file and its key live here).
    state_dir: Path = _REPO / ".local" / "web"
    session_idle_timeout: int = Field(default=30 * 60, gt=0)
    session_absolute_timeout: int = Field(default=8 * 3600, gt=0)
    # zt: token-management
    # Where sessions and sealed token caches live: "sqlite" (a file in state_dir, for one process) or a Redis
    # every replica shares (`make run WEB_REPLICAS=2`); replicas then share the sealing key too
    # (state_dir/session-key here, Key Vault in Azure). Redis is always logged in to with Microsoft Entra, as
    # Azure Cache for Redis with access keys disabled requires: the user is the web's managed identity's object
    # id, named in the URL (rediss://<object id>@<cache>.redis.cache.windows.net:6380/0), the password that
    # identity's token (redis_auth.py), never a password in configuration.
    session_store: str = SQLITE_STORE
    # Read only to refuse it: a deployment still configured with a Redis password learns it is not used.
    session_store_password: str | None = Field(default=None, repr=False)
    # Chrome and Firefox keep Secure cookies on http://localhost; false only for browsers that don't.
    cookie_secure: bool = True
    # The attack lab (/lab): fires devtools' forged tokens at the api from this server. For a local run
    # against the emulator only (zt run turns it on); refused in production.
    attack_lab: bool = False
    # zt: identity-iam-development-best-practices
    # Where the tiers' spans are (the JSON-lines files of `<PREFIX>_TRACE_FILE`): the trace pages show a person
    # their own requests' traces from there. By default the folder of this app's own trace file, which zt run
    # shares with every tier (.local/traces). None in Azure, where Application Insights' end-to-end
    # transaction view shows traces; the pages then say so.
    trace_dir: Path | None = None

    @field_validator("api_scopes", "api_write_scopes", "api_org_scopes")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("session_store")
    @classmethod
    def _store(cls, value: str) -> str:
        if value == SQLITE_STORE:
            return value
        example = "e.g. rediss://<managed identity object id>@<cache>.redis.cache.windows.net:6380/0"
        parts = urlsplit(value)
        if parts.scheme not in REDIS_SCHEMES:
            raise ValueError(f"must be {SQLITE_STORE!r} or a redis:// or rediss:// URL ({example})")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"has a port that is not a number ({example})") from None
        if not parts.hostname or (port is not None and not 0 < port < 65536):
            raise ValueError(f"must name a host and a valid port ({example})")
        if parts.password is not None:
            raise ValueError(
                "must not carry a password: the password is always the web's managed identity token "
                f"(Microsoft Entra authentication), never a key ({example})"
            )
        if not parts.username or not _GUID.fullmatch(parts.username):
            raise ValueError(f"must name the managed identity's object id as the user ({example})")
        if parts.query or parts.fragment:
            # redis-py reads connection options from the query, among them one that turns TLS checks off.
            raise ValueError(f"takes no options after the path ({example})")
        if parts.path not in ("", "/") and not parts.path[1:].isdigit():
            raise ValueError(f"must end in a database number, if anything ({example})")
        return value

    @field_validator("session_store_password")
    @classmethod
    def _no_password(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "is not a setting: Redis is logged in to with the web's managed identity token (Microsoft Entra "
                "authentication, access keys disabled); remove WEB_SESSION_STORE_PASSWORD"
            )
        return None

    @model_validator(mode="after")
    def _timeouts(self) -> Settings:
        if self.session_idle_timeout > self.session_absolute_timeout:
            raise ValueError("session_idle_timeout must not exceed session_absolute_timeout")
        return self

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        for name in ("redirect_uri", "post_logout_redirect_uri"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname)):
                problems.append(f"WEB_{name.upper()} must be https (http is for localhost only)")
        for name in ("api_url", "idp_origin"):
            if urlsplit(getattr(self, name)).scheme != "https":
                problems.append(f"WEB_{name.upper()} must be https in production")
        if self.end_session_endpoint and urlsplit(self.end_session_endpoint).scheme != "https":
            problems.append("WEB_END_SESSION_ENDPOINT must be https in production")
        if not self.cookie_secure:
            problems.append("WEB_COOKIE_SECURE must be true in production")
        store = urlsplit(self.session_store)
        if store.scheme == "redis" and not is_loopback_host(store.hostname):
            problems.append("WEB_SESSION_STORE must be rediss:// (TLS) for a Redis on another machine")
        if self.attack_lab:
            problems.append("WEB_ATTACK_LAB must be off in production (it is for the local emulator only)")
        return problems

    @property
    def traces_folder(self) -> Path | None:
        """trace_dir, else the folder of this app's own trace file; None: no trace is shown here."""
        return self.trace_dir or (self.trace_file.parent if self.trace_file is not None else None)

    @property
    def require_tls(self) -> bool:
        # Served on http://localhost (browsers treat it as a secure context); in Azure TLS ends at the ingress.
        return False

    @property
    def public_origin(self) -> str:
        """This app's own origin, as the browser sees it (from the registered redirect URI)."""
        return origin_of(self.redirect_uri)

    public_address_setting: ClassVar[str] = "REDIRECT_URI"

    @property
    def public_base_url(self) -> str:
        return self.public_origin

    @property
    def csp(self) -> str:
        return (
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; "
            f"form-action 'self' {origin_of(self.idp_origin)}"
        )

    # zt: identity-non-user-applications
    def sign_in(self, *, credential: dict[str, Any] | None = None, http_client: Any = None) -> SignInConfig:
        """The sign-in's configuration; the credential is the managed identity's token as a client assertion
        (azure-identity caches and renews it), or where configured the certificate. Never a secret."""
        return SignInConfig(
            client_id=self.client_id,
            authority=self.authority,
            redirect_uri=self.redirect_uri,
            post_logout_redirect_uri=self.post_logout_redirect_uri,
            scopes=self.api_scopes,
            allowed_tenants=self.tenants,
            credential=credential
            or client_credential(
                managed_identity_client_id=self.managed_identity_client_id,
                certificate_file=self.client_certificate_file,
            ),
            instance_discovery=self.instance_discovery,
            end_session_endpoint=self.end_session_endpoint,
            cookie_secure=self.cookie_secure,
            http_client=http_client,
            client_capabilities=tuple(CAPABILITIES),
        )
