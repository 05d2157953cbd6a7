"""The settings every tier shares: who the identity provider is, who this service is, how it proves it.

Each service subclasses `ServiceSettings` (the web) or `ApiSettings` (the APIs) with its own env prefix.
Every default is safe for a local run against the identity emulator; values that only make sense on a
laptop are refused when ENVIRONMENT=production, each with a message naming the variable to change.
Never AZURE_CLIENT_ID: azure-identity reads it as a user-assigned managed identity, a different thing.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .hosts import default_hosts
from .ids import OBJECT_ID
from .setting_types import Guid, GuidList, HostList, NetworkList, PublicUrl, TextList, split_list

# The emulator's home tenant (contoso, identity-emulator/demo/directory.yaml); in Azure, configuration.
HOME_TENANT_ID = "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
EMULATOR_AUTHORITY = f"https://localhost:8443/{HOME_TENANT_ID}"
# Sign-in for any organization, then the tenant allowlist decides (the web's multi-tenant mode).
ANY_ORGANIZATION = "organizations"
MAX_PRODUCTION_LEEWAY_SECONDS = 300
MIN_PRODUCTION_KEY_SET_SECONDS = 30.0


def is_loopback_host(host: str | None) -> bool:
    """localhost, *.localhost or a loopback address: this machine, never a real deployment."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    environment: Literal["development", "production"] = "development"
    # The identity provider: https://login.microsoftonline.com/<tenant id> in Azure, the emulator locally.
    authority: str = EMULATOR_AUTHORITY
    # MSAL's instance discovery asks Microsoft's cloud about the authority host; off for the emulator.
    instance_discovery: bool = False
    # This service's registration (application id). Subclasses give the local default.
    client_id: Guid
    # zt: identity-supported-account-types
    # Tenants whose users (and apps) are accepted; empty: the authority's own tenant only.
    allowed_tenants: GuidList = ()
    # zt: identity-non-user-applications
    # The credential, chosen by configuration: the managed identity (user-assigned when its client id is
    # set, else the platform's), or where none exists a PEM file with a key and its registered certificate.
    managed_identity_client_id: Guid | None = None
    client_certificate_file: Path | None = None
    # zt: secure-with-cae
    # Microsoft Graph, called on the signed-in user's behalf (a CAE resource): https://graph.microsoft.com
    # in Azure; `zt run` points it at the emulator. Configuration only: a URL in a token is never used.
    graph_url: str = "https://graph.microsoft.com"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # zt: protect-api
    # Rate limits (zerotrust.limits), per process: requests a second and the burst allowed at once, per peer
    # (before a token is read) and per caller (a user, an app-only client, or a web session). Sized for people
    # and the apps they use, far below which they stay; one user driving a replica at full speed meets them in
    # seconds (make bench raises them for its run: devtools/src/devtools/perf/stack.py). Production sets its
    # own from its traffic.
    rate_peer_per_second: float = Field(default=500.0, gt=0)
    rate_peer_burst: int = Field(default=10_000, ge=1)
    rate_caller_per_second: float = Field(default=300.0, gt=0)
    rate_caller_burst: int = Field(default=6_000, ge=1)
    # Proxies whose X-Forwarded-For is believed (CIDRs, e.g. the ingress's subnet); empty: the TCP peer.
    rate_trusted_proxies: NetworkList = ()
    # Tests only: a file holding seconds added to the limits' clock, so a window passes without sleeping.
    rate_clock_file: Path | None = None
    # zt: identity-iam-development-best-practices
    # One JSON line per authentication and authorization decision (zerotrust.audit); unset: no audit file.
    audit_log: Path | None = None
    # Spans as JSON lines (zerotrust.tracing), and to Azure Monitor when its connection string is set (the
    # variable Azure sets, unprefixed); neither: trace ids still join the tiers' lines, nothing exported.
    trace_file: Path | None = None
    # New traces kept per second (the rest still carry their trace id): every click of a person, a bounded
    # cost under load. Azure Monitor's distro samples the same way (rate-limited sampling).
    trace_samples_per_second: float = Field(default=20.0, ge=0)
    applicationinsights_connection_string: str | None = Field(
        default=None, validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )
    # Host header values this service answers (`host` on any port, or `host:port`); any other is a 400
    # (zerotrust.hosts: DNS rebinding, forged Host). Empty: its public address's host, plus, on this machine,
    # localhost, 127.0.0.1 and [::1] on its own port. In Azure: the app's host name (its FQDN).
    allowed_hosts: HostList = ()

    @field_validator("managed_identity_client_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("authority")
    @classmethod
    def _authority(cls, value: str) -> str:
        parts = urlsplit(value.rstrip("/"))
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https URL, e.g. https://login.microsoftonline.com/<tenant-id>")
        if len(segments) != 1 or parts.query or parts.fragment:
            raise ValueError("must end in the tenant id, e.g. https://login.microsoftonline.com/<tenant-id>")
        if not (OBJECT_ID.match(segments[0]) or segments[0] == ANY_ORGANIZATION):
            # common and domain names would make the issuer a guess: name the tenant by its id.
            raise ValueError(f"must end in the tenant id (or {ANY_ORGANIZATION!r} with ALLOWED_TENANTS set)")
        return value.rstrip("/")

    @field_validator("client_certificate_file")
    @classmethod
    def _usable_certificate(cls, value: Path | None) -> Path | None:
        if value is not None:
            from .credentials import certificate_credential  # MSAL and azure-identity only where one is set

            certificate_credential(value)  # a wrong file stops the service now, with the reason
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSettings:
        prefix = self.env_prefix()
        if self.client_certificate_file is not None and self.managed_identity_client_id:
            # Two credentials keep a service working when one is revoked: that hides one nobody meant to keep.
            raise ValueError(
                f"{prefix}MANAGED_IDENTITY_CLIENT_ID and {prefix}CLIENT_CERTIFICATE_FILE are both set: choose one "
                "credential (the managed identity, or the certificate where none exists)"
            )
        if self.tenant_id == ANY_ORGANIZATION and not self.allowed_tenants:
            raise ValueError(f"{prefix}ALLOWED_TENANTS must name the tenants when the authority is organizations")
        if self.environment == "production":
            problems = self.production_problems()
            if problems:
                raise ValueError("refused in production: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """What a laptop may do and a deployment must not; subclasses add theirs to this list."""
        prefix, problems = self.env_prefix(), []
        if is_loopback_host(urlsplit(self.authority).hostname):
            problems.append(f"{prefix}AUTHORITY points at this machine (the identity emulator); use your Entra ID")
        if not self.instance_discovery and urlsplit(self.authority).hostname == "login.microsoftonline.com":
            problems.append(f"{prefix}INSTANCE_DISCOVERY must stay on for Entra ID authorities")
        if self.rate_clock_file is not None:
            problems.append(f"{prefix}RATE_CLOCK_FILE moves the rate limits' clock; it is for tests")
        if is_loopback_host(urlsplit(self.public_base_url).hostname):
            problems.append(f"{prefix}{self.public_address_setting} must be this app's address (its FQDN in Azure)")
        graph = urlsplit(self.graph_url)
        if graph.scheme != "https" or is_loopback_host(graph.hostname):
            problems.append(f"{prefix}GRAPH_URL must be Microsoft Graph over https (https://graph.microsoft.com)")
        return problems

    @classmethod
    def env_prefix(cls) -> str:
        return str(cls.model_config.get("env_prefix", ""))

    @property
    def require_tls(self) -> bool:
        """Bearer tokens travel in this service's requests: never over plain http, not on a laptop either."""
        return True

    # The setting that gives public_base_url its value (the web's comes from its redirect URI).
    public_address_setting: ClassVar[str] = "PUBLIC_URL"

    @property
    def public_base_url(self) -> str:
        """This service's address as its callers reach it; absolute URLs it answers with start with it,
        never with a request's Host header."""
        return f"{'https' if self.require_tls else 'http'}://localhost:{self.port}"

    @property
    def trusted_hosts(self) -> tuple[str, ...]:
        """The Host header values answered: ALLOWED_HOSTS, or those of the public address (zerotrust.hosts)."""
        loopback = is_loopback_host(urlsplit(self.public_base_url).hostname)
        return self.allowed_hosts or default_hosts(self.public_base_url, self.port, loopback=loopback)

    @property
    def authority_host(self) -> str:
        """`https://host[:port]`: the authority without its tenant."""
        parts = urlsplit(self.authority)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def tenant_id(self) -> str:
        """The authority's tenant (or `organizations`)."""
        return urlsplit(self.authority).path.strip("/")

    @property
    def tenants(self) -> tuple[str, ...]:
        """The tenants accepted: the allowlist, or else the authority's own."""
        return self.allowed_tenants or (self.tenant_id,)


class ApiSettings(ServiceSettings):
    """An API tier: it validates tokens, so it also says whom it accepts and how strictly it reads clocks."""

    # Calling applications (azp) accepted with a user's (delegated) token, and with app-only tokens.
    allowed_client_ids: GuidList
    app_only_client_ids: GuidList = ()
    # zt: protect-api
    # Clock skew tolerated between the identity provider and this host, and how often the provider's
    # signing keys may be re-read: settings so tests need not wait out real minutes; production keeps
    # them in safe bounds (a small leeway; no key-set request storm).
    clock_leeway_seconds: int = Field(default=60, ge=0)
    key_set_refresh_seconds: float = Field(default=30.0, gt=0)
    # Re-read on its cache lifetime (the provider serves it for 5 minutes): bounds how long a withdrawn key
    # still works, without every tier asking every 30 s when nothing changed.
    key_set_max_age_seconds: float = Field(default=300.0, gt=0)
    # This API's address as its callers reach it (https://<app>.azurewebsites.net, or behind a gateway its
    # public URL), for the absolute URLs it answers with (SCIM's Location): configuration, never the Host
    # header. Empty: https://localhost:<port>.
    public_url: PublicUrl = ""
    # True where the platform's ingress ends TLS and is the only way in (Container Apps: HTTPS-only ingress,
    # encrypted between apps by the environment's peer-to-peer encryption); the container then serves plain
    # HTTP on its port. PUBLIC_URL must then say the https address callers use.
    tls_at_ingress: bool = False

    @property
    def public_base_url(self) -> str:
        return self.public_url or super().public_base_url

    @property
    def require_tls(self) -> bool:
        return not self.tls_at_ingress

    @field_validator("allowed_client_ids")
    @classmethod
    def _someone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one calling application")
        return value

    def production_problems(self) -> list[str]:
        prefix, problems = self.env_prefix(), super().production_problems()
        if self.clock_leeway_seconds > MAX_PRODUCTION_LEEWAY_SECONDS:
            problems.append(f"{prefix}CLOCK_LEEWAY_SECONDS is over {MAX_PRODUCTION_LEEWAY_SECONDS}")
        if min(self.key_set_refresh_seconds, self.key_set_max_age_seconds) < MIN_PRODUCTION_KEY_SET_SECONDS:
            problems.append(
                f"{prefix}KEY_SET_REFRESH_SECONDS and {prefix}KEY_SET_MAX_AGE_SECONDS must be at least "
                f"{MIN_PRODUCTION_KEY_SET_SECONDS:g} (shorter is for tests)"
            )
        if self.tls_at_ingress and urlsplit(self.public_url).scheme != "https":
            problems.append(f"{prefix}TLS_AT_INGRESS needs {prefix}PUBLIC_URL: the https address the ingress serves")
        return problems


__all__ = [
    "ANY_ORGANIZATION",
    "HOME_TENANT_ID",
    "ApiSettings",
    "Guid",
    "GuidList",
    "ServiceSettings",
    "TextList",
    "is_loopback_host",
    "split_list",
]
