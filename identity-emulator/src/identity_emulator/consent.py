"""Consent: what users and administrators granted a client on a resource, and what is still missing."""

from __future__ import annotations

from dataclasses import dataclass

from .directory import Application, Directory, User
from .errors import EntraError
from .state import Store
from .tokens import ScopeRequest


@dataclass(frozen=True)
class Consent:
    granted: frozenset[str]
    missing_user: frozenset[str]
    missing_admin: frozenset[str]


class Consents:
    def __init__(self, directory: Directory, store: Store) -> None:
        self.directory = directory
        self.store = store
        # The demo directory's admin consents are the starting point; what the admin view changed since is kept.
        for tenant in directory.tenants.values():
            for (client_id, resource_id), roles in tenant.admin_app_roles.items():
                store.admin.admin_roles.setdefault((tenant.tenant_id, client_id, resource_id), set(roles))
            for (client_id, resource_id), scopes in tenant.admin_scopes.items():
                store.admin.admin_consent.setdefault((tenant.tenant_id, client_id, resource_id), set(scopes))

    def check(self, user: User, client: Application, req: ScopeRequest) -> Consent:
        """What the user may get for this client on the requested resource, and what is still missing."""
        if req.resource is None:
            return Consent(frozenset(), frozenset(), frozenset())
        res = req.resource
        granted = self.granted_scopes(user, client, res)
        wanted = set(req.scopes)
        if req.default:
            wanted = set(client.required_scopes.get(res.application_id, frozenset())) | granted
        missing = wanted - granted
        admin_only = {s for s in missing if res.scopes[s].admin_consent_required}
        if client.app_role_assignment_required:
            # zt: app-registration
            # Entra allows no user consent to an app that requires assignment: an administrator consents.
            admin_only = set(missing)
        return Consent(frozenset(wanted & granted), frozenset(missing - admin_only), frozenset(admin_only))

    def require(self, user: User, client: Application, req: ScopeRequest) -> list[str]:
        c = self.check(user, client, req)
        if c.missing_admin:
            raise EntraError(
                "invalid_grant",
                90094,
                suberror="consent_required",
                scopes=", ".join(sorted(c.missing_admin)),
                app=client.display_name,
            )
        if c.missing_user or (req.resource is not None and not c.granted):
            raise EntraError(
                "invalid_grant",
                65001,
                suberror="consent_required",
                client_id=client.application_id,
                app=client.display_name,
            )
        return sorted(c.granted)

    def record(self, user: User, client: Application, res: Application, scopes: set[str]) -> None:
        key = (user.tenant_id, user.object_id, client.application_id, res.application_id)
        self.store.admin.user_consent.setdefault(key, set()).update(scopes)
        # Combined consent: a client listed as "known" by a middle tier carries the middle tier's
        # own delegated needs along, so the user is asked once for the whole chain.
        if client.application_id in res.known_client_ids:
            for downstream_id, needed in res.required_scopes.items():
                down = (user.tenant_id, user.object_id, res.application_id, downstream_id)
                # zt: permissions-require-admin-consent - a user's consent never carries an
                # admin-only scope along, not even downstream; only an administrator's does.
                downstream = self.directory.applications[downstream_id]
                own = {s for s in needed if s in downstream.scopes and not downstream.scopes[s].admin_consent_required}
                self.store.admin.user_consent.setdefault(down, set()).update(own)
        self.store.save()

    def granted_scopes(self, user: User, client: Application, res: Application) -> frozenset[str]:
        """Everything this user may already get for `client` on `res`: pre-authorized, their own
        consent, and the tenant's admin consent."""
        granted = set(res.pre_authorized.get(client.application_id, frozenset()))
        granted |= self.store.admin.user_consent.get(
            (user.tenant_id, user.object_id, client.application_id, res.application_id), set()
        )
        granted |= self.store.admin.admin_consent.get(
            (user.tenant_id, client.application_id, res.application_id), set()
        )
        return frozenset(granted)

    def grant_admin(
        self, tenant_id: str, client: Application, res: Application, scopes: set[str] | None = None
    ) -> set[str]:
        """Tenant-wide admin consent of `client` on `res` for `scopes` (default: all the resource's), and
        (combined consent) of `res` on what it needs downstream when `client` is one of its known clients.
        Returns the scopes granted on `res`."""
        scopes = set(res.scopes) if scopes is None else scopes & res.scopes.keys()
        self.store.admin.admin_consent.setdefault((tenant_id, client.application_id, res.application_id), set()).update(
            scopes
        )
        if client.application_id in res.known_client_ids:
            for downstream_id, needed in res.required_scopes.items():
                key = (tenant_id, res.application_id, downstream_id)
                self.store.admin.admin_consent.setdefault(key, set()).update(needed)
        return scopes

    def grant_admin_roles(self, tenant_id: str, client: Application, res: Application) -> set[str]:
        """The application roles on `res` that the client's registration asks for, granted to the client."""
        wanted = {
            r
            for r in client.required_roles.get(res.application_id, ())
            if "Application" in getattr(res.app_roles.get(r), "allowed_member_types", ())
        }
        if wanted:
            self.store.admin.admin_roles.setdefault(
                (tenant_id, client.application_id, res.application_id), set()
            ).update(wanted)
        return wanted
