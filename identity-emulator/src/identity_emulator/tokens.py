"""Minting tokens shaped like Entra ID v2.0 tokens, and reading the requests that ask for them."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from .cae import capable
from .directory import MEMBER_ROLE, OIDC_SCOPES, Application, Directory, ManagedIdentity, User, service_principal_id
from .errors import EntraError
from .keys import KeyStore, b64url
from .settings import EmulatorSettings

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Entra limits groups in a JWT to 200; beyond that it sends a pointer to Graph instead (overage).
GROUPS_LIMIT = 200
MAX_REMEMBERED_TOKENS = 100_000


@dataclass(frozen=True)
class ScopeRequest:
    """A parsed `scope` parameter: at most one resource plus OpenID Connect scopes."""

    resource: Application | None
    scopes: frozenset[str]  # short values on the resource, e.g. {"Tasks.Read"}
    default: bool  # ".default": everything statically granted
    oidc: frozenset[str]

    def full_for(self, values: list[str]) -> list[str]:
        """Full scope strings, as Entra echoes them in a token response."""
        if self.resource is None:
            return []
        base = self.resource.identifier_uri or self.resource.application_id
        return [f"{base}/{v}" for v in sorted(values)]


def parse_scopes(raw: str | None, directory: Directory) -> ScopeRequest:
    if not raw or not raw.strip():
        raise EntraError("invalid_scope", 70011, scope="''")
    resource: Application | None = None
    values: set[str] = set()
    oidc: set[str] = set()
    default = False
    for item in raw.split():
        if item in OIDC_SCOPES:
            oidc.add(item)
            continue
        base, sep, value = item.rpartition("/")
        if not sep or not base or not value:
            raise EntraError("invalid_scope", 70011, scope=repr(item[:200]))
        app = directory.resource(base)
        if app is None:
            raise EntraError("invalid_resource", 500011, resource=base[:200], tenant="this tenant")
        if resource is not None and app is not resource:
            raise EntraError("invalid_scope", 28000, scope=repr(raw[:200]))
        resource = app
        if value == ".default":
            default = True
        elif value in app.scopes:
            values.add(value)
        else:
            raise EntraError("invalid_scope", 650053, app="the client", scope=value[:200], resource=base[:200])
    if default and values:
        raise EntraError("invalid_scope", 70011, scope=repr(raw[:200]))
    return ScopeRequest(resource, frozenset(values), default, frozenset(oidc))


def client_info(user: User) -> str:
    return b64url(json.dumps({"uid": user.object_id, "utid": user.tenant_id}).encode())


def pairwise_sub(oid: str, application_id: str) -> str:
    # Entra's sub is unique per user and application, so two apps can't correlate a user by it.
    return b64url(hashlib.sha256(f"{oid}:{application_id}".encode()).digest())


def wants_cp1(claims: str | None) -> bool:
    """Whether a `claims` request declares client capability cp1 (CAE), as MSAL sends it."""
    if not claims:
        return False
    try:
        parsed = json.loads(claims)
        values = parsed["access_token"]["xms_cc"]["values"]
    # RecursionError: the caller's JSON may nest deeper than the parser recurses (found by fuzzing).
    except (ValueError, KeyError, TypeError, RecursionError):
        return False
    return capable(values)


def _opaque() -> str:
    return b64url(secrets.token_bytes(16))


class TokenIssuer:
    def __init__(self, settings: EmulatorSettings, directory: Directory, keys: KeyStore) -> None:
        self.settings = settings
        self.directory = directory
        self.keys = keys
        # When each recent token was minted, to the microsecond (uti -> time): `iat` is whole seconds, and
        # a revocation must order correctly against a token minted in the same second (cae.py).
        self._minted: OrderedDict[str, float] = OrderedDict()

    def issued_at(self, claims: dict[str, Any]) -> float:
        """When a token this emulator minted was issued; its `iat` for one too old to be remembered."""
        return self._minted.get(str(claims.get("uti")), float(claims.get("iat", 0) or 0))

    def issuer(self, tenant_id: str) -> str:
        return f"{self.settings.issuer_base}/{tenant_id}/v2.0"

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.active
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})

    def _base(self, tenant_id: str, audience: str, lifetime: int) -> dict[str, Any]:
        precise = time.time()
        now, uti = int(precise), _opaque()
        self._minted[uti] = precise
        if len(self._minted) > MAX_REMEMBERED_TOKENS:
            self._minted.popitem(last=False)
        return {
            "aud": audience,
            "iss": self.issuer(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "aio": _opaque(),
            "rh": _opaque(),
            "tid": tenant_id,
            "uti": uti,
            "ver": "2.0",
        }

    def user_access_token(
        self,
        user: User,
        client: Application,
        resource: Application | None,
        scopes: list[str],
        azpacr: str,
        claims_request: str | None,
        acrs: list[str] | None = None,
    ) -> tuple[str, int]:
        aud = resource.application_id if resource else GRAPH_APP_ID
        claims = self._base(user.tenant_id, aud, self.settings.access_token_lifetime)
        claims.update(
            {
                "azp": client.application_id,
                "azpacr": azpacr,
                "name": user.display_name,
                "oid": user.object_id,
                "preferred_username": user.upn,
                "scp": " ".join(scopes),
                "sub": pairwise_sub(user.object_id, aud),
            }
        )
        self._guest(claims, user)
        if aud == GRAPH_APP_ID or (
            resource is not None and resource.group_membership_claims in ("All", "DirectoryRole")
        ):
            # The user's directory roles (template ids), as in Graph's tokens: Graph, and the emulator's
            # admin endpoints, read what the signed-in person may do in the directory from them.
            claims["wids"] = [*sorted(user.directory_roles), MEMBER_ROLE]
        if resource is not None:
            roles = sorted(r for app_id, r in user.app_roles if app_id == resource.application_id)
            if roles:
                claims["roles"] = roles
            self._groups(claims, user, resource)
            self._optional(claims, user, resource.optional_claims.get("access_token", ()), app_only=False)
        if wants_cp1(claims_request):
            claims["xms_cc"] = ["cp1"]
        if acrs:
            claims["acrs"] = acrs  # authentication contexts met (stepup.py)
        return self.sign(claims), claims["exp"]

    def app_access_token(
        self,
        tenant_id: str,
        client: Application,
        resource: Application,
        roles: list[str],
        azpacr: str,
        claims_request: str | None,
    ) -> tuple[str, int]:
        claims = self._base(tenant_id, resource.application_id, self.settings.access_token_lifetime)
        sp = service_principal_id(tenant_id, client.application_id)
        claims.update({"azp": client.application_id, "azpacr": azpacr, "oid": sp, "sub": sp})
        if roles:
            claims["roles"] = sorted(roles)
        self._optional(claims, None, resource.optional_claims.get("access_token", ()), app_only=True)
        if wants_cp1(claims_request):
            claims["xms_cc"] = ["cp1"]
        return self.sign(claims), claims["exp"]

    def managed_identity_token(self, mi: ManagedIdentity, audience: str, roles: list[str]) -> tuple[str, int]:
        home = self.directory.home_tenant_id
        claims = self._base(home, audience, self.settings.managed_identity_token_lifetime)
        claims.update(
            {
                "azp": mi.client_id,
                "appid": mi.client_id,
                "azpacr": "2",
                "idtyp": "app",
                "oid": mi.object_id,
                "sub": mi.object_id,
                "xms_mirid": "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/zt-sample/providers/"
                f"Microsoft.ManagedIdentity/userAssignedIdentities/{mi.name}",
            }
        )
        if roles:
            claims["roles"] = sorted(roles)
        return self.sign(claims), claims["exp"]

    def id_token(
        self, user: User, client: Application, nonce: str | None, auth_time: float, session_id: str | None
    ) -> str:
        claims = self._base(user.tenant_id, client.application_id, self.settings.id_token_lifetime)
        claims.update(
            {
                "name": user.display_name,
                "oid": user.object_id,
                "preferred_username": user.upn,
                "sub": pairwise_sub(user.object_id, client.application_id),
                "auth_time": int(auth_time),
            }
        )
        self._guest(claims, user)
        if nonce is not None:
            claims["nonce"] = nonce
        wanted = client.optional_claims.get("id_token", ())
        self._optional(claims, user, wanted, app_only=False)
        if "sid" in wanted and session_id:
            claims["sid"] = str(uuid.uuid5(uuid.NAMESPACE_OID, session_id))
        return self.sign(claims)

    @staticmethod
    def _guest(claims: dict[str, Any], user: User) -> None:
        # zt: zero-trust-token-customization
        # Entra's `idp` for a guest from another Entra tenant: her home tenant's v1 issuer (iss and tid stay
        # this tenant's). Members get no idp claim: it would equal the issuer.
        if user.home_tenant_id is not None:
            claims["idp"] = f"https://sts.windows.net/{user.home_tenant_id}/"

    def _groups(self, claims: dict[str, Any], user: User, resource: Application) -> None:
        if resource.group_membership_claims in ("None", "", None):
            return
        if len(user.groups) > GROUPS_LIMIT:
            # As Entra does: a pointer, which relying parties must not follow blindly (the URL is
            # attacker-controlled in a forged token); they call Graph themselves instead.
            claims["_claim_names"] = {"groups": "src1"}
            claims["_claim_sources"] = {
                "src1": {"endpoint": f"https://graph.microsoft.com/v1.0/users/{user.object_id}/getMemberObjects"}
            }
        else:
            claims["groups"] = list(user.groups)

    @staticmethod
    def _optional(claims: dict[str, Any], user: User | None, wanted: tuple[str, ...], app_only: bool) -> None:
        for name in wanted:
            if name == "idtyp":
                claims["idtyp"] = "app" if app_only else "user"
            elif user is None:
                continue
            elif name == "acct":
                claims["acct"] = 1 if user.is_guest else 0  # 0: a member of the tenant, 1: a guest
            elif name == "ctry" and user.country:
                claims["ctry"] = user.country
            elif name == "login_hint":
                claims["login_hint"] = (
                    base64.urlsafe_b64encode(f"{user.tenant_id}.{user.object_id}".encode()).decode().rstrip("=")
                )
            elif name == "email":
                claims["email"] = user.upn
