"""Configuration of the identity emulator (environment variables prefixed EMULATOR_)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from zerotrust.settings import is_loopback_host

_REPO = Path(__file__).resolve().parents[3]


class EmulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMULATOR_")

    # The emulator is a development tool with no security boundary of its own: it must never be
    # reachable from another machine, so anything but a loopback address is refused outright.
    host: str = "127.0.0.1"
    port: int = 8443
    # The browser-facing pages (sign-in, consent, device login, sign-out, admin) are served over
    # plain http on localhost, which browsers treat as a secure context, so a person never meets a
    # certificate warning and nothing is installed in the system trust store. Tokens are only ever
    # issued on the https back channel.
    front_port: int = 8444
    public_host: str = "localhost"
    state_dir: Path = _REPO / ".local" / "emulator"
    manifest: Path = _REPO / "infra" / "registrations.yaml"
    directory: Path = _REPO / "identity-emulator" / "demo" / "directory.yaml"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # zt: identity-supported-account-types - registrations (by name, comma-separated) whose sign-in
    # audience is multi-tenant for this run: what `zt run --tenants a,b` switches, as Terraform would.
    multi_tenant_apps: Annotated[tuple[str, ...], NoDecode] = ()
    # The web app's origin: what "{web_origin}" in the registrations' terms and privacy URLs stands for.
    web_origin: str = "http://localhost:8000"

    # The app's SCIM 2.0 endpoint (e.g. https://localhost:8001/scim/v2), told when an administrator disables,
    # enables or deletes a user, as Entra's provisioning service does; empty: no app is provisioned.
    scim_url: str = ""
    # zt: overprivileged-permissions
    # Where the Graph stand-in writes an audit line per call (the permission it used), beside the app's tiers'
    # lines (`zt permissions-report` reads them all); unset: no audit file.
    audit_log: Path | None = None

    access_token_lifetime: int = 3600
    # Managed-identity tokens (App Service's endpoint); tests shorten it, e.g. to make database
    # tokens expire within a test run while connections are recycled.
    managed_identity_token_lifetime: int = 3600
    id_token_lifetime: int = 3600
    refresh_token_lifetime: int = 24 * 3600
    code_lifetime: int = 120
    device_code_lifetime: int = 900
    device_code_interval: int = 1
    # How long a rotated-out signing key stays published, so tokens it signed keep validating.
    key_overlap_seconds: int = 24 * 3600

    # Smart lockout (lockout.py): Entra's defaults, 10 failed sign-ins lock an account for 60 seconds; an
    # address failing this often across accounts (password spraying) is blocked as long.
    lockout_threshold: int = Field(default=10, ge=1)
    lockout_seconds: float = Field(default=60.0, gt=0)
    lockout_peer_threshold: int = Field(default=50, ge=1)
    # Throttling (429, Retry-After): per address on the token and sign-in endpoints, and per client
    # application on the token endpoint. Far above what a test run or `make bench` asks (every local
    # service shares one address), so only a flood meets them.
    rate_peer_per_second: float = Field(default=200.0, gt=0)
    rate_peer_burst: int = Field(default=4000, ge=1)
    rate_client_per_second: float = Field(default=100.0, gt=0)
    rate_client_burst: int = Field(default=2000, ge=1)
    # Tests only: a file holding seconds added to the lockout's and throttles' clock (no sleeping).
    rate_clock_file: Path | None = None

    @field_validator("multi_tenant_apps", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        if not is_loopback_host(value):
            raise ValueError(
                f"the identity emulator binds loopback only (got {value!r}); it is a dev/test tool, "
                "not an identity provider for anything reachable from a network"
            )
        return value

    @property
    def demo_password_file(self) -> Path:
        """The demo users' one password, made at first run (owner-only); the pages and `make run` name the file,
        never the password, so it stays out of terminals, logs and screenshots."""
        return self.state_dir / "demo-password"

    @property
    def issuer_base(self) -> str:
        return f"https://{self.public_host}:{self.port}"

    @property
    def front_base(self) -> str:
        return f"http://{self.public_host}:{self.front_port}"
