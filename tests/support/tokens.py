"""The tests' one token factory: tokens as Entra (and the emulator) issues them, validly signed, and wrong
in exactly one way where a test wants it.

`Issuer(stack)` signs with the emulator's own keys (`<local>/emulator/signing-keys/<kid>.pem`), for tests
against running services; `Issuer.standalone()` with a key of its own, served by `FakeProvider` to apps
tested in process. Each builder takes an Issuer or a stack (anything with `.info` and `.local_dir`) and
the API the token is meant to reach, and changes exactly one thing in a token that is otherwise what the
identity provider itself would issue: expired, not yet valid, a claim missing, the wrong audience,
issuer, tenant, version or calling app.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.paths import repo_root
from zerotrust.tokens import MAX_TOKEN_BYTES

# What the APIs tolerate by default (ApiSettings.clock_leeway_seconds): a token this far off is refused.
LEEWAY_SECONDS = 60

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ENTRA_HOST = "https://login.microsoftonline.com"

# alice@contoso.test, as the demo directory has her.
ALICE = {
    "oid": "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912",
    "name": "Alice Adams",
    "preferred_username": "alice@contoso.test",
}


def pairwise_subject(oid: str, audience: str) -> str:
    """Stable per user and application, different between applications, as Entra's `sub` is."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"{oid}:{audience}".encode()).digest()).rstrip(b"=").decode()


class HasIdentityProvider(Protocol):
    info: dict[str, Any]
    local_dir: Path


@cache
def app_id(name: str) -> str:
    """An application id from the registrations the emulator serves (infra/registrations.yaml)."""
    from identity_emulator.manifest import load_directory

    root = repo_root()
    directory = load_directory(
        root / "infra" / "registrations.yaml", root / "identity-emulator" / "demo" / "directory.yaml"
    )
    found: str = directory.by_name[name].application_id
    return found


@dataclass(frozen=True)
class Api:
    """One protected tier as a caller addresses it, and what its routes demand."""

    name: str  # the registration's name: "api" or "downstream-api"
    realm: str
    base: str
    read_path: str  # GET, needs one of read_scopes; answers 200 to a valid token without other calls
    write_path: str  # POST, needs write_scopes
    read_scopes: tuple[str, ...]
    write_scopes: tuple[str, ...]
    caller: str  # a calling application (azp) this API allows
    app_caller: str  # a calling application this API allows app-only tokens from
    foreign_scopes: str  # the other API's scopes: valid somewhere, meaningless here

    @property
    def app_id(self) -> str:
        return app_id(self.name)

    def url(self, path: str | None = None) -> str:
        return self.base + (path or self.read_path)


def apis(stack: HasIdentityProvider) -> dict[str, Api]:
    return apis_at(str(stack.info["api"]), str(stack.info["downstream_api"]))


def apis_at(api_base: str, downstream_base: str) -> dict[str, Api]:
    return {
        "api": Api(
            "api",
            "api",
            api_base,
            # /me answers from the token alone when downstream can't be reached for a minted token.
            "/me",
            "/tasks",
            ("Tasks.Read", "Tasks.ReadWrite"),
            ("Tasks.ReadWrite",),
            caller=app_id("web"),
            app_caller=app_id("daemon"),
            foreign_scopes="Records.Read Records.ReadWrite",
        ),
        "downstream-api": Api(
            "downstream-api",
            "downstream-api",
            downstream_base,
            "/records",
            "/records",
            ("Records.Read", "Records.ReadWrite"),
            ("Records.ReadWrite",),
            caller=app_id("api"),
            app_caller=app_id("api-app-only"),
            foreign_scopes="Tasks.Read Tasks.ReadWrite",
        ),
    }


# The demo directory's tenants (identity-emulator/demo/directory.yaml).
DEMO_TENANTS = {"contoso": "9c8a1e2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d", "fabrikam": "7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"}
STANDALONE_HOST = "https://login.example.test"
STANDALONE_KID = "test-key-1"


class Issuer:
    """Signs as the identity provider does: with the emulator's own keys (read from its state directory),
    or standalone with a key of its own."""

    def __init__(self, stack: HasIdentityProvider | None = None) -> None:
        self.keys_dir = stack.local_dir / "emulator" / "signing-keys" if stack is not None else None
        self.authorities: dict[str, str] = dict(stack.info["authorities"]) if stack is not None else {}
        self.tenants: dict[str, str] = dict(stack.info["tenants"]) if stack is not None else {}
        self._loaded: dict[str, rsa.RSAPrivateKey] = {}

    @classmethod
    def standalone(cls, host: str = STANDALONE_HOST, key: rsa.RSAPrivateKey | None = None) -> Issuer:
        issuer = cls()
        issuer.tenants = dict(DEMO_TENANTS)
        issuer.authorities = {name: f"{host}/{tid}" for name, tid in DEMO_TENANTS.items()}
        issuer._loaded[STANDALONE_KID] = key or _standalone_key()
        return issuer

    def authority(self, tenant: str = "contoso") -> str:
        return self.authorities[tenant]

    def kids(self) -> list[str]:
        """Published kids, oldest first; the last one is the key the provider signs with now."""
        if self.keys_dir is None:
            return list(self._loaded)
        return [entry["kid"] for entry in json.loads((self.keys_dir / "keys.json").read_text())]

    def jwks(self) -> dict[str, Any]:
        """The key set as the provider publishes it (public halves only)."""
        keys = []
        for kid in self.kids():
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key(kid).public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def private_key(self, kid: str) -> rsa.RSAPrivateKey:
        # Kept once read: a key withdrawn later is gone from disk, and tests still sign with it.
        if kid not in self._loaded:
            assert self.keys_dir is not None, f"no key {kid!r}"
            key = serialization.load_pem_private_key((self.keys_dir / f"{kid}.pem").read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            self._loaded[kid] = key
        return self._loaded[kid]

    def issuer(self, tenant: str = "contoso") -> str:
        return f"{self.authorities[tenant]}/v2.0"

    def claims(self, api: Api, **overrides: Any) -> dict[str, Any]:
        """A delegated v2.0 access token for alice, as the emulator would issue it for `api`."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": api.app_id,
            "iss": self.issuer(),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": self.tenants["contoso"],
            "oid": ALICE["oid"],
            "sub": pairwise_subject(ALICE["oid"], api.app_id),
            "azp": api.caller,
            "azpacr": "2" if api.caller == app_id("api") else "1",
            "ver": "2.0",
            "scp": " ".join(api.read_scopes[:1]),
            "idtyp": "user",
            "name": ALICE["name"],
            "preferred_username": ALICE["preferred_username"],
            "uti": secrets.token_urlsafe(16),
        }
        claims.update(overrides)
        return claims

    def sign(
        self, claims: dict[str, Any], *, kid: str | None = None, alg: str = "RS256", key: Any = None, **header: Any
    ) -> str:
        """`key`: sign with another key (an attacker's) while naming `kid`."""
        kid = kid or self.kids()[-1]
        signing_key = key if key is not None else self.private_key(kid)
        return jwt.encode(claims, signing_key, algorithm=alg, headers={"kid": kid, "typ": "JWT", **header})

    def token(
        self,
        api: Api,
        *,
        drop: tuple[str, ...] = (),
        kid: str | None = None,
        alg: str = "RS256",
        key: Any = None,
        headers: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        claims = {k: v for k, v in self.claims(api, **overrides).items() if k not in drop}
        return self.sign(claims, kid=kid, alg=alg, key=key, **(headers or {}))


@cache
def _standalone_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeProvider:
    """The identity provider's discovery document and key set for an app tested in process, as the
    `Fetch` its KeySet uses (zerotrust.tokens); `up = False` makes every request fail to connect."""

    issuer: Issuer
    up: bool = True
    requests: list[str] = field(default_factory=list)

    async def fetch(self, url: str) -> Any:
        self.requests.append(url)
        if not self.up:
            raise ConnectionRefusedError("the identity provider is down")
        if url.endswith("/v2.0/.well-known/openid-configuration"):
            authority = url.removesuffix("/v2.0/.well-known/openid-configuration")
            return {"issuer": f"{authority}/v2.0", "jwks_uri": f"{authority}/discovery/v2.0/keys"}
        if url.endswith("/discovery/v2.0/keys"):
            return self.issuer.jwks()
        raise ValueError(f"not found: {url}")


# -- builders: one tweak each, in the style of fastapi-azure-auth's test utilities ----------------


Source = Issuer | HasIdentityProvider


def _issuer(source: Source) -> Issuer:
    return source if isinstance(source, Issuer) else Issuer(source)


def build_access_token(stack: Source, api: Api, **overrides: Any) -> str:
    """Valid for `api`; `overrides` replace claims (a claim set to None is still sent, as null)."""
    return _issuer(stack).token(api, **overrides)


def build_access_token_expired(
    stack: Source, api: Api, seconds_ago: int = LEEWAY_SECONDS + 60, **overrides: Any
) -> str:
    now = int(time.time())
    return _issuer(stack).token(api, **{"iat": now - 3600, "nbf": now - 3600, "exp": now - seconds_ago, **overrides})


def build_access_token_not_yet_valid(
    stack: Source, api: Api, seconds_ahead: int = LEEWAY_SECONDS + 60, **overrides: Any
) -> str:
    now = int(time.time())
    return _issuer(stack).token(api, **{"nbf": now + seconds_ahead, "exp": now + 3600, **overrides})


def build_access_token_issued_in_future(
    stack: Source, api: Api, seconds_ahead: int = LEEWAY_SECONDS + 60, **overrides: Any
) -> str:
    now = int(time.time())
    return _issuer(stack).token(api, **{"iat": now + seconds_ahead, "exp": now + 3600, **overrides})


def build_access_token_without(stack: Source, api: Api, claim: str) -> str:
    return _issuer(stack).token(api, drop=(claim,))


def build_access_token_v1(stack: Source, api: Api) -> str:
    return _issuer(stack).token(api, ver="1.0")


def build_access_token_issuer(stack: Source, api: Api, issuer: str, tenant: str = "contoso") -> str:
    """Issued by `issuer` (a URL, or a tenant name of the emulator) for a user of `tenant`."""
    issuers = _issuer(stack)
    iss = issuers.issuer(issuer) if issuer in issuers.tenants else issuer
    return issuers.token(api, iss=iss, tid=issuers.tenants[tenant])


def build_access_token_other_host(stack: Source, api: Api, host: str = "https://evil.example") -> str:
    issuers = _issuer(stack)
    return issuers.token(api, iss=f"{host}/{issuers.tenants['contoso']}/v2.0")


def build_access_token_other_tenant(stack: Source, api: Api) -> str:
    """A consistent token from fabrikam (issuer and tid agree): a real tenant, just not allowed here."""
    return build_access_token_issuer(stack, api, "fabrikam", "fabrikam")


def build_access_token_for_audience(stack: Source, api: Api, audience: Any) -> str:
    return _issuer(stack).token(api, aud=audience)


def build_id_token(stack: Source, api: Api) -> str:
    """An ID token for the web app: proof of sign-in for the client, never an access token."""
    issuers = _issuer(stack)
    now = int(time.time())
    claims = {
        "aud": app_id("web"),
        "iss": issuers.issuer(),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "tid": issuers.tenants["contoso"],
        "oid": ALICE["oid"],
        "sub": pairwise_subject(ALICE["oid"], app_id("web")),
        "ver": "2.0",
        "nonce": secrets.token_urlsafe(16),
        "name": ALICE["name"],
        "preferred_username": ALICE["preferred_username"],
        "sid": str(uuid.uuid4()),
    }
    return issuers.sign(claims)


def build_access_token_from_client(stack: Source, api: Api, client_id: str) -> str:
    return _issuer(stack).token(api, azp=client_id)


def build_app_only_token(stack: Source, api: Api, roles: list[str], **overrides: Any) -> str:
    """Client credentials: no user, no scp; the app's object id as oid and sub; roles granted to it.
    From a client the API takes app-only tokens from (`api.app_caller`), unless `azp` says otherwise."""
    app_oid = str(uuid.uuid4())
    claims = {
        "scp": None,
        "roles": roles,
        "idtyp": "app",
        "oid": app_oid,
        "sub": app_oid,
        "azp": api.app_caller,
        "azpacr": "2",
        **overrides,
    }
    issuers = _issuer(stack)
    base = issuers.claims(api, **claims)
    for absent in ("scp", "idtyp", "name", "preferred_username"):
        if base.get(absent) is None:
            base.pop(absent, None)
    return issuers.sign(base)


def build_access_token_with_scopes(stack: Source, api: Api, scp: str | None, **overrides: Any) -> str:
    """Delegated, with exactly these scopes (None: no scp claim at all)."""
    issuers = _issuer(stack)
    claims = issuers.claims(api, scp=scp, **overrides)
    if scp is None:
        del claims["scp"]
    return issuers.sign(claims)


def build_access_token_with_alg(stack: Source, api: Api, alg: str) -> str:
    """Signed by the provider's real key, but with an algorithm outside the allowlist."""
    return _issuer(stack).token(api, alg=alg)


def build_access_token_of_length(stack: Source, api: Api, length: int) -> str:
    """Validly signed and padded with a filler claim to `length` characters, or to the nearest length
    below it that base64url can make (it never ends at 1 mod 4)."""
    issuers = _issuer(stack)
    claims = issuers.claims(api)
    kid = issuers.kids()[-1]
    # base64url turns 3 bytes into 4 characters: start just short, then step one byte at a time.
    pad = max(0, (length - len(issuers.sign(claims, kid=kid))) * 3 // 4 - 4)
    while True:
        token = issuers.sign({**claims, "pad": "A" * pad}, kid=kid)
        if len(token) >= length - 3:
            if len(token) > length:
                pad -= 1
                continue
            return token
        pad += 1


__all__ = [
    "DEMO_TENANTS",
    "ENTRA_HOST",
    "GRAPH_APP_ID",
    "LEEWAY_SECONDS",
    "MAX_TOKEN_BYTES",
    "Api",
    "FakeProvider",
    "Issuer",
    "apis",
    "apis_at",
    "app_id",
    "build_access_token",
    "build_access_token_expired",
    "build_access_token_for_audience",
    "build_access_token_from_client",
    "build_access_token_issued_in_future",
    "build_access_token_issuer",
    "build_access_token_not_yet_valid",
    "build_access_token_of_length",
    "build_access_token_other_host",
    "build_access_token_other_tenant",
    "build_access_token_v1",
    "build_access_token_with_alg",
    "build_access_token_with_scopes",
    "build_access_token_without",
    "build_app_only_token",
    "build_id_token",
]
