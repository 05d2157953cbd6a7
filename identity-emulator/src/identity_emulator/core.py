"""The emulator's state and the checks every flow shares: tenants, users, and the tokens a user gets."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from zerotrust.audit import AuditLog
from zerotrust.limits import settable_clock

from . import stepup
from .client_auth import Client, ClientAuthenticator
from .consent import Consents
from .directory import Application, Directory, Tenant, User
from .errors import EntraError
from .keys import KeyStore
from .lockout import SignInGuard, throttles
from .manifest import load_directory
from .settings import EmulatorSettings
from .state import RefreshGrant, Store, UserRef, new_handle
from .tokens import TokenIssuer, client_info, parse_scopes


class Emulator:
    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory: Directory = load_directory(
            settings.manifest, settings.directory, frozenset(settings.multi_tenant_apps), settings.web_origin
        )
        # Calls to the Graph stand-in (graph.py), for workshops and tests; not persisted.
        self.graph_requests = 0
        self.audit = AuditLog(settings.audit_log) if settings.audit_log else None
        self.keys = KeyStore(settings.state_dir / "signing-keys", settings.key_overlap_seconds)
        self.store = Store(settings.state_dir)
        self.issuer = TokenIssuer(settings, self.directory, self.keys)
        # Smart lockout and throttling (lockout.py), on a clock tests can move.
        clock = settable_clock(settings.rate_clock_file)
        self.sign_in_guard = SignInGuard(settings, clock)
        self.throttles = throttles(settings, clock)
        self.client_auth = ClientAuthenticator(settings, self.directory, self.keys, self.issuer, self.throttles)
        self.consent = Consents(self.directory, self.store)
        self.demo_password = self._secret_file(settings.demo_password_file.name, lambda: secrets.token_urlsafe(12))
        self.identity_headers: dict[str, str] = json.loads(
            self._secret_file(
                "managed-identity-headers.json",
                lambda: json.dumps({name: secrets.token_urlsafe(24) for name in self.directory.managed_identities}),
            )
        )
        missing = [n for n in self.directory.managed_identities if n not in self.identity_headers]
        if missing:
            # An identity added to the manifest after the state was created gets its header too.
            self.identity_headers.update({n: secrets.token_urlsafe(24) for n in missing})
            (self.settings.state_dir / "managed-identity-headers.json").write_text(json.dumps(self.identity_headers))

    def _secret_file(self, name: str, make: Any) -> str:
        path: Path = self.settings.state_dir / name
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.touch(mode=0o600)
            tmp.write_text(make())
            tmp.replace(path)
        return path.read_text().strip()

    # -- tenants and users ---------------------------------------------------------------------

    def tenant_for_path(self, ref: str) -> Tenant | None:
        """None for the multi-tenant endpoints; raises for an unknown tenant."""
        if ref.lower() in ("common", "organizations"):
            return None
        tenant = self.directory.tenant(ref)
        if tenant is None:
            # Entra names this error invalid_tenant (discovery and token endpoint alike); MSAL and
            # azure-identity surface that name, so apps may branch on it.
            raise EntraError("invalid_tenant", 90002, tenant=ref[:100])
        return tenant

    def check_app_in_tenant(self, app: Application, tenant_id: str) -> None:
        if tenant_id != self.directory.home_tenant_id and not app.multi_tenant:
            raise EntraError("unauthorized_client", 700016, client_id=app.application_id, tenant=tenant_id)

    # zt: app-registration
    def check_assigned(self, user: User, *apps: Application | None) -> None:
        """AADSTS50105 for the first app that requires assignment and has none for `user`: the app the user
        signs in to, then the resource the token is for (each service principal keeps its own list)."""
        for app in apps:
            if app is not None and not app.assigned(user):
                raise EntraError(
                    "invalid_grant", 50105, app=app.display_name, client_id=app.application_id, upn=user.upn
                )

    def check_app_assigned(self, client: Application, resource: Application, roles: list[str]) -> None:
        """AADSTS501051: an app with no app role on a resource that requires assignment gets no token for it."""
        if resource.app_role_assignment_required and not roles:
            raise EntraError(
                "invalid_grant",
                501051,
                client_id=client.application_id,
                app=client.display_name,
                resource_id=resource.identifier_uri or resource.application_id,
                resource=resource.display_name,
            )

    def user_ref(self, user: User) -> UserRef:
        return (user.tenant_id, user.object_id)

    def check_user_active(self, user: User, issued_at: float | None = None) -> None:
        """Disabled accounts and grants older than a session revocation are refused."""
        ref = self.user_ref(user)
        if ref in self.store.admin.disabled:
            raise EntraError("invalid_grant", 50057)
        valid_from = self.store.admin.tokens_valid_from.get(ref)
        if issued_at is not None and valid_from is not None and issued_at < valid_from:
            raise EntraError(
                "invalid_grant", 50173, suberror="bad_token", issued=_iso(issued_at), valid_from=_iso(valid_from)
            )

    def user(self, ref: UserRef) -> User:
        user = self.directory.user_by_oid(*ref)
        if user is None:
            raise EntraError("invalid_grant", 70000)
        return user

    # -- issuing -------------------------------------------------------------------------------

    def user_tokens(
        self,
        user: User,
        client: Client,
        scope: str,
        *,
        claims: str | None,
        auth_time: float,
        family: str,
        nonce: str | None = None,
        session_id: str | None = None,
        carried_contexts: list[str] | None = None,
    ) -> dict[str, Any]:
        """Where every flow that carries a user ends: consent for the scopes asked, the authentication
        contexts the claims ask for (met in the session, or carried by the user's token), then the tokens."""
        req = parse_scopes(scope, self.directory)
        # Every flow that carries a user ends here, so the assignment is checked for all of them (a
        # refresh token or an on-behalf-of exchange after an administrator removed it is refused too).
        self.check_assigned(user, client.app, req.resource)
        scopes = self.consent.require(user, client.app, req)
        acrs = stepup.contexts_for(self, claims, session_id, carried_contexts or ())
        access, exp = self.issuer.user_access_token(user, client.app, req.resource, scopes, client.azpacr, claims, acrs)
        now = time.time()
        body: dict[str, Any] = {
            "token_type": "Bearer",  # a token type, not a secret  # nosec B105
            "scope": " ".join(req.full_for(scopes)) if req.resource else " ".join(sorted(req.oidc)),
            "expires_in": exp - int(now),
            "ext_expires_in": exp - int(now),
            "access_token": access,
            "client_info": client_info(user),
        }
        if "offline_access" in req.oidc:
            rt = new_handle()
            self.store.refresh[rt] = RefreshGrant(
                client.app.application_id,
                self.user_ref(user),
                auth_time,
                family,
                now + self.settings.refresh_token_lifetime,
                session_id,
            )
            body["refresh_token"] = rt
            body["refresh_token_expires_in"] = self.settings.refresh_token_lifetime
        if "openid" in req.oidc:
            body["id_token"] = self.issuer.id_token(user, client.app, nonce, auth_time, session_id)
        return body


def _iso(ts: float) -> str:
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(ts))
