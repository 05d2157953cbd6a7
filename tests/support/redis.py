"""The private Redis behind its token front (devtools.redis_server, devtools.redis_front), as the tests reach it.

`start_redis_front` puts a front before a running private Redis, checking tokens against an identity
provider: the emulator (its key set over https) or, for the web app tested in process, the standalone
Issuer's keys. Either way the web's managed identity is the one with an access policy assignment, as in
Azure, and the front runs in this process so tests can set its clock and read what it decided.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any

import jwt
import redis
from azure.core.credentials import AccessToken
from devtools.entratoken import AccessTokenChecker
from devtools.paths import repo_root
from devtools.pgtoken import role_map
from devtools.redis_front import REDIS_AUDIENCE, RedisFront, access_policy, server_context
from devtools.redis_server import FRONT_USER, RedisServer
from devtools.tls import DevTls

from tests.support.tokens import Issuer

MANIFEST = repo_root() / "infra" / "registrations.yaml"
OBJECT_IDS = role_map(MANIFEST)
WEB_OBJECT_ID = OBJECT_IDS["web"]


class StaticKeys:
    """A key set as the identity provider publishes it, without fetching it (the in-process web tests)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in self._keys:
            raise jwt.PyJWKClientError(f"no key {kid!r} in the key set")
        return self._keys[kid]


@dataclass
class FakeClock:
    """The front's clock: real time plus what a test adds, so nobody waits out a token."""

    ahead: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@dataclass
class RedisFrontStack:
    server: RedisServer
    front: RedisFront
    tls: DevTls
    clock: FakeClock

    @property
    def url(self) -> str:
        """WEB_SESSION_STORE for the web: its identity's object id as the user, TLS to the front."""
        return f"rediss://{WEB_OBJECT_ID}@localhost:{self.front.port}/0"

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.tls.ca_bundle)

    def private(self) -> redis.Redis:
        """Straight to the private Redis as the front's user: for a test to look at or empty the store."""
        password = self.server.password_file.read_text().strip()
        return redis.Redis(host="127.0.0.1", port=self.server.port, username=FRONT_USER, password=password)

    def clear(self) -> None:
        with self.private() as client:
            keys = list(client.scan_iter(count=1000))
            if keys:
                client.delete(*keys)

    def stop(self) -> None:
        self.front.stop()


def start_redis_front(
    server: RedisServer, tls: DevTls, authority: str, *, keys: Any = None, identities: tuple[str, ...] = ("web",)
) -> RedisFrontStack:
    """A front on a free port before `server`; `keys`: the key set (default: the authority's, over https)."""
    clock = FakeClock()
    checker = AccessTokenChecker(
        authority=authority, audience=REDIS_AUDIENCE, ca_bundle=tls.ca_bundle, keys=keys, clock=clock
    )
    front = RedisFront(
        checker,
        access_policy(MANIFEST, identities),
        backend_port=server.port,
        password_file=server.password_file,
        tls=server_context(tls),
    ).start()
    return RedisFrontStack(server, front, tls, clock)


class SignerCredential:
    """An async token credential (azure-identity's shape) whose tokens the standalone Issuer signs: the web's
    managed identity for the in-process tests. Counts what it was asked."""

    def __init__(self, signer: Issuer, tenant: str = "contoso", object_id: str = WEB_OBJECT_ID) -> None:
        self.signer, self.tenant, self.object_id = signer, tenant, object_id
        self.lifetime = 3600
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        now = int(time.time())
        claims = {
            "aud": REDIS_AUDIENCE,
            "iss": self.signer.issuer(self.tenant),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "oid": self.object_id,
            "sub": self.object_id,
            "tid": self.signer.tenants[self.tenant],
            "idtyp": "app",
            "ver": "2.0",
        }
        return AccessToken(self.signer.sign(claims), now + self.lifetime)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> SignerCredential:
        return self

    async def __aexit__(self, *_: object) -> None:
        pass
