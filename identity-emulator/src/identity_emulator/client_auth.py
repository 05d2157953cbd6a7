"""Client authentication at the token endpoint: public clients, certificate assertions and federated
credentials (a managed identity's token presented as the app's assertion)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from zerotrust.limits import RateLimits

from .directory import Application, Directory
from .errors import EntraError
from .keys import KeyStore, b64url
from .lockout import throttled
from .settings import EmulatorSettings
from .shapes import well_formed
from .tokens import TokenIssuer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Clock skew tolerated on client assertions, as Entra does (five minutes).
ASSERTION_LEEWAY = 300


@dataclass(frozen=True)
class Client:
    app: Application
    azpacr: str  # 0 public, 1 secret, 2 certificate or federated assertion


class ClientAuthenticator:
    def __init__(
        self,
        settings: EmulatorSettings,
        directory: Directory,
        keys: KeyStore,
        issuer: TokenIssuer,
        throttles: RateLimits | None = None,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.keys = keys
        self.issuer = issuer
        self.throttles = throttles

    def authenticate(self, form: dict[str, str], path_tenant: str) -> Client:
        """The client, authenticated; then throttled per application (429 past its rate, lockout.py)."""
        client = self._identify(form, path_tenant)
        if self.throttles is not None:
            throttled(self.throttles, path_tenant, client.app.application_id)
        return client

    def _identify(self, form: dict[str, str], path_tenant: str) -> Client:
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
            # x5t is the SHA-1 thumbprint by definition (RFC 7515 4.1.7): an identifier, not a protection.
            der_s256 = b64url(candidate.fingerprint(hashes.SHA256()))
            der_s1 = b64url(candidate.fingerprint(hashes.SHA1()))  # noqa: S303  # nosec B303
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
        if not well_formed(claims, audience_list=True) or not isinstance(claims.get("jti"), str):
            raise EntraError("invalid_client", 50027, status=401)
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
        if not well_formed(claims, audience_list=True):
            raise EntraError("invalid_client", 50027, status=401)
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
