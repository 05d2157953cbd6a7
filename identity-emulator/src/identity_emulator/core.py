"""The emulator's decisions, independent of HTTP: who the client is, what was granted, what to issue."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .directory import Application, Directory, Tenant, User
from .errors import EntraError
from .keys import KeyStore, b64url
from .manifest import load_directory
from .settings import EmulatorSettings
from .state import RefreshGrant, Store, UserRef, new_handle
from .tokens import ScopeRequest, TokenIssuer, client_info

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Clock skew tolerated on client assertions, as Entra does (five minutes).
ASSERTION_LEEWAY = 300


@dataclass(frozen=True)
class Client:
    app: Application
    azpacr: str  # 0 public, 1 secret, 2 certificate or federated assertion


@dataclass(frozen=True)
class Consent:
    granted: frozenset[str]
    missing_user: frozenset[str]
    missing_admin: frozenset[str]


class Emulator:
    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory: Directory = load_directory(
            settings.manifest, settings.directory, frozenset(settings.multi_tenant_apps)
        )
        # Calls to the Graph stand-in (graph.py), for workshops and tests; not persisted.
        self.graph_requests = 0
        self.keys = KeyStore(settings.state_dir / "signing-keys", settings.key_overlap_seconds)
        self.store = Store(settings.state_dir)
        self.issuer = TokenIssuer(settings, self.directory, self.keys)
        self.demo_password = self._secret_file("demo-password", lambda: secrets.token_urlsafe(12))
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
        for tenant in self.directory.tenants.values():
            for (client_id, resource_id), roles in tenant.admin_app_roles.items():
                self.store.admin.admin_roles.setdefault((tenant.tenant_id, client_id, resource_id), set(roles))
            for (client_id, resource_id), scopes in tenant.admin_scopes.items():
                self.store.admin.admin_consent.setdefault((tenant.tenant_id, client_id, resource_id), set(scopes))

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

    # -- consent ---------------------------------------------------------------------------------

    def consent(self, user: User, client: Application, req: ScopeRequest) -> Consent:
        """What the user may get for this client on the requested resource, and what is still missing."""
        if req.resource is None:
            return Consent(frozenset(), frozenset(), frozenset())
        res = req.resource
        key = (user.tenant_id, client.application_id, res.application_id)
        granted = set(res.pre_authorized.get(client.application_id, frozenset()))
        granted |= self.store.admin.user_consent.get((user.tenant_id, user.object_id, *key[1:]), set())
        granted |= self.store.admin.admin_consent.get(key, set())
        wanted = set(req.scopes)
        if req.default:
            wanted = set(client.required_scopes.get(res.application_id, frozenset())) | granted
        missing = wanted - granted
        admin_only = {s for s in missing if res.scopes[s].admin_consent_required}
        return Consent(frozenset(wanted & granted), frozenset(missing - admin_only), frozenset(admin_only))

    def require_consent(self, user: User, client: Application, req: ScopeRequest) -> list[str]:
        c = self.consent(user, client, req)
        if c.missing_admin:
            raise EntraError(
                "invalid_grant",
                90094,
                suberror="consent_required",
                scopes=", ".join(sorted(c.missing_admin)),
                app=client.display_name,
            )
        if c.missing_user:
            raise EntraError(
                "invalid_grant",
                65001,
                suberror="consent_required",
                client_id=client.application_id,
                app=client.display_name,
            )
        if req.resource is not None and not c.granted:
            raise EntraError(
                "invalid_grant",
                65001,
                suberror="consent_required",
                client_id=client.application_id,
                app=client.display_name,
            )
        return sorted(c.granted)

    def record_consent(self, user: User, client: Application, res: Application, scopes: set[str]) -> None:
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
        consent, and the tenant's admin consent (for the consent page: what is already granted)."""
        granted = set(res.pre_authorized.get(client.application_id, frozenset()))
        granted |= self.store.admin.user_consent.get(
            (user.tenant_id, user.object_id, client.application_id, res.application_id), set()
        )
        granted |= self.store.admin.admin_consent.get(
            (user.tenant_id, client.application_id, res.application_id), set()
        )
        return frozenset(granted)

    def grant_admin_consent(self, tenant_id: str, client: Application, res: Application) -> set[str]:
        """Tenant-wide admin consent of `client` on `res`, and (combined consent) of `res` on what it
        needs downstream when `client` is one of its known clients. Returns the scopes granted on `res`."""
        scopes = set(res.scopes)
        self.store.admin.admin_consent.setdefault((tenant_id, client.application_id, res.application_id), set()).update(
            scopes
        )
        if client.application_id in res.known_client_ids:
            for downstream_id, needed in res.required_scopes.items():
                key = (tenant_id, res.application_id, downstream_id)
                self.store.admin.admin_consent.setdefault(key, set()).update(needed)
        return scopes

    # -- client authentication -------------------------------------------------------------------

    def authenticate_client(self, form: dict[str, str], path_tenant: str) -> Client:
        client_id = form.get("client_id")
        assertion = form.get("client_assertion")
        secret = form.get("client_secret")
        if not client_id and assertion:
            try:
                client_id = str(jwt.decode(assertion, options={"verify_signature": False}).get("sub", ""))
            except jwt.PyJWTError:
                raise EntraError("invalid_client", 50027, status=401) from None
        if not client_id:
            raise EntraError("invalid_request", 900144, param="client_id")
        app = self.directory.applications.get(client_id.strip().lower())
        if app is None:
            raise EntraError("unauthorized_client", 700016, client_id=client_id[:100], tenant=path_tenant[:100])
        if app.is_public:
            if assertion or secret:
                raise EntraError("invalid_client", 700025, status=401)
            return Client(app, "0")
        if assertion:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise EntraError("invalid_request", 900144, param="client_assertion_type")
            return Client(app, self._verify_assertion(app, assertion, path_tenant))
        if secret:
            # No registration in this sample declares a secret: every secret is a wrong one.
            raise EntraError("invalid_client", 7000215, status=401, client_id=app.application_id)
        raise EntraError("invalid_client", 7000218, status=401)

    def _verify_assertion(self, app: Application, assertion: str, path_tenant: str) -> str:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise EntraError("invalid_client", 50027, status=401) from None
        if "x5t#S256" in header or "x5t" in header:
            self._verify_certificate_assertion(app, assertion, header, path_tenant)
        else:
            self._verify_federated_assertion(app, assertion, header)
        return "2"

    def _verify_certificate_assertion(
        self, app: Application, assertion: str, header: dict[str, Any], path_tenant: str
    ) -> None:
        # The key comes from the registration, found by thumbprint; a key or URL in the header is
        # never used (RFC 8725 3.10).
        cert = None
        # Header values are the caller's JSON: a thumbprint that is not a string matches nothing.
        s256, s1 = (v.rstrip("=") if isinstance(v := header.get(k), str) else None for k in ("x5t#S256", "x5t"))
        for candidate in self.certificates(app):
            der_s256 = b64url(candidate.fingerprint(hashes.SHA256()))
            der_s1 = b64url(candidate.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1 by definition
            if s256 == der_s256 or s1 == der_s1:
                cert = candidate
                break
        if cert is None:
            raise EntraError("invalid_client", 700027, status=401)
        audiences = {self.token_endpoint(t) for t in (path_tenant, self.directory.home_tenant_id)}
        audiences |= {self.issuer.issuer(self.directory.home_tenant_id)}
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=list(audiences),
                leeway=ASSERTION_LEEWAY,
                options={"require": ["aud", "exp", "iss", "sub", "jti"]},
            )
        except jwt.InvalidAudienceError:
            raise EntraError("invalid_client", 700023, status=401) from None
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise EntraError("invalid_client", 700024, status=401) from None
        except jwt.PyJWTError:
            raise EntraError("invalid_client", 700027, status=401) from None
        if claims["iss"] != app.application_id or claims["sub"] != app.application_id:
            raise EntraError("invalid_client", 700021, status=401)

    def _verify_federated_assertion(self, app: Application, assertion: str, header: dict[str, Any]) -> None:
        key = self.keys.public_key(str(header.get("kid", "")))
        if key is None:
            raise EntraError("invalid_client", 50013, status=401)
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                leeway=ASSERTION_LEEWAY,
                options={"verify_aud": False, "require": ["aud", "exp", "iss", "sub"]},
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise EntraError("invalid_client", 700024, status=401) from None
        except jwt.PyJWTError:
            raise EntraError("invalid_client", 50013, status=401) from None
        auds = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        home_issuer = self.issuer.issuer(self.directory.home_tenant_id)
        for fed in app.federated_credentials:
            mi = self.directory.managed_identities[fed.managed_identity]
            if claims["iss"] == home_issuer and claims["sub"] == mi.object_id:
                if set(auds) & set(fed.audiences):
                    return
                # The right identity with a token for another audience: Entra names the audience.
                raise EntraError("invalid_client", 700212, status=401, aud=str(claims["aud"])[:200])
        raise EntraError(
            "invalid_client",
            70021,
            status=401,
            iss=str(claims["iss"])[:200],
            sub=str(claims["sub"])[:100],
            aud=str(claims["aud"])[:200],
        )

    def certificates(self, app: Application) -> list[x509.Certificate]:
        """Certificates registered for the app: public halves dropped into the credentials folder."""
        folder = self.settings.state_dir.parent / "credentials" / app.name
        certs = []
        for path in sorted(folder.glob("*.crt")) if app.certificate_credential_names else []:
            try:
                certs.append(x509.load_pem_x509_certificate(path.read_bytes()))
            except ValueError:
                continue
        return certs

    def token_endpoint(self, tenant: str) -> str:
        return f"{self.settings.issuer_base}/{tenant}/oauth2/v2.0/token"

    # -- issuing -------------------------------------------------------------------------------

    def user_tokens(
        self,
        user: User,
        client: Client,
        req: ScopeRequest,
        scopes: list[str],
        *,
        claims: str | None,
        nonce: str | None,
        auth_time: float,
        family: str,
        session_id: str | None,
    ) -> dict[str, Any]:
        access, exp = self.issuer.user_access_token(user, client.app, req.resource, scopes, client.azpacr, claims)
        now = time.time()
        body: dict[str, Any] = {
            "token_type": "Bearer",
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
