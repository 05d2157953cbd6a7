"""The directory the emulator serves: app registrations, managed identities, tenants and their people."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 - an audience, not a secret  # nosec B105
# Azure Database for PostgreSQL's Entra resource; managed identities ask for it to log in.
OSSRDBMS_RESOURCE = "https://ossrdbms-aad.database.windows.net"
# Azure Cache for Redis's Entra resource; the web's managed identity asks for it for the shared session store.
REDIS_RESOURCE = "https://redis.azure.com"
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})

# Microsoft Entra built-in directory roles by template id: the ids a token's `wids` claim carries.
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
CLOUD_APPLICATION_ADMINISTRATOR = "158c047a-c907-4556-b7ef-446551a6b5f7"
APPLICATION_ADMINISTRATOR = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
DIRECTORY_ROLES = {
    "Global Administrator": GLOBAL_ADMINISTRATOR,
    "Privileged Role Administrator": PRIVILEGED_ROLE_ADMINISTRATOR,
    "Cloud Application Administrator": CLOUD_APPLICATION_ADMINISTRATOR,
    "Application Administrator": APPLICATION_ADMINISTRATOR,
    "User Administrator": USER_ADMINISTRATOR,
}
# Every member of a tenant holds the default user role; Entra lists it in `wids` too.
MEMBER_ROLE = "b79fbf4d-3ef9-4689-8143-76b194e85509"
# zt: permissions-require-admin-consent - who may grant consent for the whole tenant.
CONSENT_ROLES = frozenset(
    {GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR, CLOUD_APPLICATION_ADMINISTRATOR, APPLICATION_ADMINISTRATOR}
)
# Who may disable, delete, restore and sign users out.
USER_ROLES = frozenset({GLOBAL_ADMINISTRATOR, USER_ADMINISTRATOR})
# Any of these opens the admin view; each action then asks for its own roles.
ADMIN_ROLES = CONSENT_ROLES | USER_ROLES


@dataclass(frozen=True)
class Scope:
    value: str
    id: str
    admin_consent_required: bool
    description: str


@dataclass(frozen=True)
class AppRole:
    value: str
    id: str
    allowed_member_types: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class FederatedCredential:
    name: str
    managed_identity: str
    audiences: tuple[str, ...]


@dataclass
class Application:
    name: str
    display_name: str
    application_id: str
    client_type: str  # confidential | public
    sign_in_audience: str
    identifier_uri: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    scopes: dict[str, Scope]
    app_roles: dict[str, AppRole]
    pre_authorized: dict[str, frozenset[str]]  # client application_id -> scope values
    known_client_ids: frozenset[str]
    federated_credentials: tuple[FederatedCredential, ...]
    certificate_credential_names: tuple[str, ...]
    required_scopes: dict[str, frozenset[str]]  # resource application_id -> scope values
    required_roles: dict[str, frozenset[str]]  # resource application_id -> app role values
    optional_claims: dict[str, tuple[str, ...]]
    group_membership_claims: str
    app_role_assignment_required: bool
    allow_public_client_flows: bool
    implicit_grant: dict[str, bool]
    owners: tuple[str, ...] = ()
    # Linked from the consent prompt, as Entra links a registration's terms and privacy statement.
    terms_of_service_url: str | None = None
    privacy_statement_url: str | None = None

    @property
    def is_public(self) -> bool:
        return self.client_type == "public"

    @property
    def multi_tenant(self) -> bool:
        return self.sign_in_audience == "AzureADMultipleOrgs"

    def accepts_redirect_uri(self, uri: str) -> bool:
        return _registered(uri, self.redirect_uris)

    def accepts_post_logout_uri(self, uri: str) -> bool:
        return _registered(uri, self.post_logout_redirect_uris)

    # zt: app-registration
    def assigned(self, user: User) -> bool:
        """Whether `user` may have this app's tokens: assignment not required, or any role assigned here.
        Entra checks it on this app's service principal wherever the app signs a user in or is the resource."""
        return not self.app_role_assignment_required or any(a == self.application_id for a, _ in user.app_roles)

    def resource_ids(self) -> set[str]:
        """Every string by which a client may name this application as a resource."""
        ids = {self.application_id}
        if self.identifier_uri:
            ids.add(self.identifier_uri)
        return ids


@dataclass(frozen=True)
class ManagedIdentity:
    name: str
    client_id: str
    object_id: str


@dataclass
class User:
    upn: str
    display_name: str
    object_id: str
    tenant_id: str
    groups: tuple[str, ...]  # group object ids
    country: str | None
    app_roles: tuple[tuple[str, str], ...]  # (resource application_id, role value)
    directory_roles: frozenset[str] = frozenset()  # role template ids (DIRECTORY_ROLES)
    # zt: zero-trust-token-customization
    # A B2B guest (userType Guest): invited from another tenant, signed in there, a user object here. Her
    # tokens from this tenant carry this tenant's tid and issuer, acct 1, and her home tenant as `idp`.
    home_tenant_id: str | None = None

    @property
    def is_guest(self) -> bool:
        return self.home_tenant_id is not None

    def holds(self, roles: frozenset[str]) -> bool:
        """Whether the user is assigned any of these directory roles now (not: when a token was issued)."""
        return bool(self.directory_roles & roles)


@dataclass
class Tenant:
    name: str
    tenant_id: str
    display_name: str
    domain: str
    users: dict[str, User]  # by lower-case UPN
    groups: dict[str, str]  # group object id -> display name
    # (client application_id, resource application_id) -> app roles the admin granted
    admin_app_roles: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # (client application_id, resource application_id) -> delegated scopes granted tenant-wide
    admin_scopes: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # Deleted users, by lower-case UPN: gone from sign-in and Graph, restorable (Entra keeps them 30 days).
    deleted: dict[str, User] = field(default_factory=dict)


@dataclass
class Directory:
    applications: dict[str, Application]  # by application_id
    by_name: dict[str, Application]
    managed_identities: dict[str, ManagedIdentity]  # by name
    tenants: dict[str, Tenant]  # by tenant_id
    home_tenant_id: str

    def tenant(self, ref: str) -> Tenant | None:
        """Look a tenant up as Entra does: by id, by name or by verified domain."""
        ref = ref.lower()
        for t in self.tenants.values():
            if ref in (t.tenant_id, t.name, t.domain):
                return t
        return None

    def user(self, upn: str) -> User | None:
        upn = upn.strip().lower()
        for t in self.tenants.values():
            if upn in t.users:
                return t.users[upn]
        return None

    def user_by_oid(self, tenant_id: str, oid: str) -> User | None:
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            return None
        return next((u for u in tenant.users.values() if u.object_id == oid), None)

    def resource(self, ref: str) -> Application | None:
        for app in self.applications.values():
            if ref in app.resource_ids():
                return app
        return None

    def managed_identity_by_object_id(self, oid: str) -> ManagedIdentity | None:
        return next((m for m in self.managed_identities.values() if m.object_id == oid), None)


# zt: user-authentication
# A redirect URI is compared as a string, as Entra compares it, and never parsed: a URL parser that reads the
# host differently from the browser (userinfo, a backslash, a fragment) could be talked into another host.
# Only these characters may appear at all; "@", "\\", "#", "[", whitespace, controls and non-ASCII never.
_SAFE_URI = re.compile(r"\A[A-Za-z0-9\-._~:/?&=%+,;!$'()*]+\Z")
# The one exception (Entra's, RFC 8252 7.3): the port of an http loopback URI is ignored, so a native or
# local app may listen on whatever port is free. The host is literal text; only the digits may differ.
_LOOPBACK_PORT = re.compile(r"\A(http://(?:localhost|127\.0\.0\.1)):([0-9]{1,5})((?:[/?].*)?)\Z")


def _without_loopback_port(uri: str) -> str | None:
    """An http loopback URI with its port taken out; None for any other URI or a port that is no port."""
    match = _LOOPBACK_PORT.match(uri)
    if match is None or not 0 < int(match[2]) < 65536:
        return None
    return match[1] + match[3]


def _registered(uri: str, registered: tuple[str, ...]) -> bool:
    """Exact string match against the registered list; for http loopback URIs, any port."""
    if not _SAFE_URI.match(uri):
        return False
    if uri in registered:
        return True
    portless = _without_loopback_port(uri)
    return portless is not None and portless in {_without_loopback_port(r) or r for r in registered}


def service_principal_id(tenant_id: str, application_id: str) -> str:
    """A stable object id for an application's service principal in a tenant."""
    return str(uuid.uuid5(uuid.UUID(tenant_id), f"sp:{application_id}"))
