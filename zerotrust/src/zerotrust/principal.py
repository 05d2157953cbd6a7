"""Who is calling, as a validated Entra ID v2.0 access token says it.

Every field is a claim Entra issues; the docstrings say what it means and how this sample uses it.
Data is keyed on `tid` + `oid` (immutable, never reassigned), never on names or email addresses.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    tid: str = Field(description="Tenant id of the directory the caller belongs to.")
    oid: str = Field(
        description="Object id of the user, or of the client's service principal for app-only "
        "tokens. Immutable and unique in the tenant: the key for the caller's data."
    )
    sub: str = Field(description="Pairwise subject: unique per user *and* application; differs between tiers.")
    aud: str = Field(description="Audience: the application id of the API the token was minted for.")
    iss: str = Field(description="Issuer: the tenant-specific v2.0 issuer, checked against the tenant.")
    azp: str = Field(description="Application id of the client that obtained the token (the calling app).")
    azpacr: str | None = Field(
        None, description="How the client authenticated: 0 public, 1 secret, 2 certificate or federated assertion."
    )
    scp: str | None = Field(None, description="Delegated scopes, space-separated; present only when a user is present.")
    roles: tuple[str, ...] = Field((), description="App roles: assigned to the user, or granted to the app (app-only).")
    idtyp: str | None = Field(None, description="Optional claim: 'app' for app-only tokens, 'user' for delegated ones.")
    ver: str = Field(description="Token version; this sample accepts 2.0 only.")
    name: str | None = Field(None, description="Display name; for display only, never for decisions.")
    preferred_username: str | None = Field(None, description="Sign-in name; mutable, for display only.")
    uti: str | None = Field(None, description="Unique token identifier (for logs, never the token itself).")
    xms_cc: tuple[str, ...] = Field(
        (), description="Client capabilities, e.g. cp1: the client handles CAE claims challenges."
    )
    groups: tuple[str, ...] = Field((), description="Group object ids, when the API asks for group claims.")
    has_group_overage: bool = Field(
        False,
        description="True when the groups did not fit in the token "
        "(_claim_names/_claim_sources); resolve them through Graph, never through "
        "the URL in the token.",
    )
    exp: int = Field(description="Expiry (seconds since the epoch).")
    # zt: zero-trust-token-customization - optional claims the api's registration asks for
    # (infra/registrations.yaml optional_claims); shown, never used to decide anything.
    acct: int | None = Field(None, description="Optional claim: 0 a member of the tenant, 1 a guest.")
    ctry: str | None = Field(None, description="Optional claim: the user's country or region (two letters).")

    @property
    def is_app_only(self) -> bool:
        """No user in the token: client credentials or a managed identity calling as itself."""
        return self.idtyp == "app" or (self.scp is None and self.idtyp != "user")

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scp.split()) if self.scp else frozenset()

    @property
    def user_key(self) -> str:
        """Stable per-user key (tenant + object id), also MSAL's home account id for this user."""
        return f"{self.oid}.{self.tid}"

    def view(self) -> dict[str, Any]:
        """What a tier may show about its caller (identity-through-the-chain page): no token, no secrets."""
        return {
            "tenant_id": self.tid,
            "object_id": self.oid,
            "subject": self.sub,
            "audience": self.aud,
            "calling_app": self.azp,
            "calling_app_authentication": {
                "0": "public client",
                "1": "client secret",
                "2": "certificate or federated credential",
            }.get(self.azpacr or ""),
            "scopes": sorted(self.scopes),
            "roles": list(self.roles),
            "app_only": self.is_app_only,
            "name": self.name,
            "username": self.preferred_username,
            "client_capabilities": list(self.xms_cc),
            "account_type": {0: "member", 1: "guest"}.get(self.acct) if self.acct is not None else None,
            "country": self.ctry,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        roles = claims.get("roles") or ()
        groups = claims.get("groups") or ()
        names = claims.get("_claim_names")
        return cls.model_validate(
            {
                **claims,
                "roles": tuple(roles) if isinstance(roles, list) else (),
                "groups": tuple(groups) if isinstance(groups, list) else (),
                "xms_cc": tuple(claims.get("xms_cc") or ()) if isinstance(claims.get("xms_cc"), list) else (),
                "has_group_overage": isinstance(names, dict) and "groups" in names,
            }
        )
