"""Tokens minted with the emulator's real signing key: validly signed, deliberately wrong.

The emulator is the tests' own identity provider, so the tests may sign with its private key
(`<local>/emulator/signing-keys/<kid>.pem`) to build what an attacker can't but a careless
validator must still refuse: expired, not yet valid, a claim missing, the wrong audience, issuer,
tenant, version or calling app. Each builder takes the stack (anything with `.info` and
`.local_dir`: a `RunningStack` or a `LiveEmulator`) and the API the token is meant to reach, and
changes exactly one thing in a token that is otherwise what the emulator itself would issue.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.paths import repo_root
from zerotrust.validation import LEEWAY_SECONDS, MAX_TOKEN_BYTES

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
            app_caller=app_id("api"),
            foreign_scopes="Tasks.Read Tasks.ReadWrite",
        ),
    }


class Issuer:
    """Signs as the emulator does, with the emulator's own keys (read from its state directory)."""

    def __init__(self, stack: HasIdentityProvider) -> None:
        self.keys_dir = stack.local_dir / "emulator" / "signing-keys"
        self.authorities: dict[str, str] = dict(stack.info["authorities"])
        self.tenants: dict[str, str] = dict(stack.info["tenants"])
        self._loaded: dict[str, rsa.RSAPrivateKey] = {}

    def kids(self) -> list[str]:
        """Published kids, oldest first; the last one is the key the emulator signs with now."""
        return [entry["kid"] for entry in json.loads((self.keys_dir / "keys.json").read_text())]

    def private_key(self, kid: str) -> rsa.RSAPrivateKey:
        # Kept once read: a key withdrawn later is gone from disk, and tests still sign with it.
        if kid not in self._loaded:
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

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, alg: str = "RS256", **header: Any) -> str:
        kid = kid or self.kids()[-1]
        return jwt.encode(claims, self.private_key(kid), algorithm=alg, headers={"kid": kid, "typ": "JWT", **header})

    def token(
        self, api: Api, *, drop: tuple[str, ...] = (), kid: str | None = None, alg: str = "RS256", **overrides: Any
    ) -> str:
        claims = {k: v for k, v in self.claims(api, **overrides).items() if k not in drop}
        return self.sign(claims, kid=kid, alg=alg)


# -- builders: one tweak each, in the style of fastapi-azure-auth's test utilities ----------------


def build_access_token(stack: HasIdentityProvider, api: Api, **overrides: Any) -> str:
    """Valid for `api`; `overrides` replace claims (a claim set to None is still sent, as null)."""
    return Issuer(stack).token(api, **overrides)


def build_access_token_expired(stack: HasIdentityProvider, api: Api, seconds_ago: int = LEEWAY_SECONDS + 60) -> str:
    now = int(time.time())
    return Issuer(stack).token(api, iat=now - 3600, nbf=now - 3600, exp=now - seconds_ago)


def build_access_token_not_yet_valid(
    stack: HasIdentityProvider, api: Api, seconds_ahead: int = LEEWAY_SECONDS + 60
) -> str:
    now = int(time.time())
    return Issuer(stack).token(api, nbf=now + seconds_ahead, exp=now + 3600)


def build_access_token_issued_in_future(
    stack: HasIdentityProvider, api: Api, seconds_ahead: int = LEEWAY_SECONDS + 60
) -> str:
    now = int(time.time())
    return Issuer(stack).token(api, iat=now + seconds_ahead, exp=now + 3600)


def build_access_token_without(stack: HasIdentityProvider, api: Api, claim: str) -> str:
    return Issuer(stack).token(api, drop=(claim,))


def build_access_token_v1(stack: HasIdentityProvider, api: Api) -> str:
    return Issuer(stack).token(api, ver="1.0")


def build_access_token_issuer(stack: HasIdentityProvider, api: Api, issuer: str, tenant: str = "contoso") -> str:
    """Issued by `issuer` (a URL, or a tenant name of the emulator) for a user of `tenant`."""
    issuers = Issuer(stack)
    iss = issuers.issuer(issuer) if issuer in issuers.tenants else issuer
    return issuers.token(api, iss=iss, tid=issuers.tenants[tenant])


def build_access_token_other_host(stack: HasIdentityProvider, api: Api, host: str = "https://evil.example") -> str:
    issuers = Issuer(stack)
    return issuers.token(api, iss=f"{host}/{issuers.tenants['contoso']}/v2.0")


def build_access_token_other_tenant(stack: HasIdentityProvider, api: Api) -> str:
    """A consistent token from fabrikam (issuer and tid agree): a real tenant, just not allowed here."""
    return build_access_token_issuer(stack, api, "fabrikam", "fabrikam")


def build_access_token_for_audience(stack: HasIdentityProvider, api: Api, audience: Any) -> str:
    return Issuer(stack).token(api, aud=audience)


def build_id_token(stack: HasIdentityProvider, api: Api) -> str:
    """An ID token for the web app: proof of sign-in for the client, never an access token."""
    issuers = Issuer(stack)
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


def build_access_token_from_client(stack: HasIdentityProvider, api: Api, client_id: str) -> str:
    return Issuer(stack).token(api, azp=client_id)


def build_app_only_token(stack: HasIdentityProvider, api: Api, roles: list[str], **overrides: Any) -> str:
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
    issuers = Issuer(stack)
    base = issuers.claims(api, **claims)
    for absent in ("scp", "idtyp", "name", "preferred_username"):
        if base.get(absent) is None:
            base.pop(absent, None)
    return issuers.sign(base)


def build_access_token_with_scopes(stack: HasIdentityProvider, api: Api, scp: str | None, **overrides: Any) -> str:
    """Delegated, with exactly these scopes (None: no scp claim at all)."""
    issuers = Issuer(stack)
    claims = issuers.claims(api, scp=scp, **overrides)
    if scp is None:
        del claims["scp"]
    return issuers.sign(claims)


def build_access_token_with_alg(stack: HasIdentityProvider, api: Api, alg: str) -> str:
    """Signed by the provider's real key, but with an algorithm outside the allowlist."""
    return Issuer(stack).token(api, alg=alg)


def build_access_token_of_length(stack: HasIdentityProvider, api: Api, length: int) -> str:
    """Validly signed and padded with a filler claim to `length` characters, or to the nearest length
    below it that base64url can make (it never ends at 1 mod 4)."""
    issuers = Issuer(stack)
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
    "ENTRA_HOST",
    "GRAPH_APP_ID",
    "MAX_TOKEN_BYTES",
    "Api",
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
