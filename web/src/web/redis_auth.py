"""Microsoft Entra authentication to the shared session store, as Azure Cache for Redis requires with
access keys disabled: the user is the web's managed identity's object id (named in WEB_SESSION_STORE), the
password that identity's access token for `https://redis.azure.com`, never a key or a stored password.

azure-identity's ManagedIdentityCredential (found by IDENTITY_ENDPOINT/IDENTITY_HEADER, the user-assigned
identity picked by WEB_MANAGED_IDENTITY_CLIENT_ID, as for the web's federated credential) caches the token
and renews it before it expires; each new connection authenticates with the current one. Azure closes a
connection whose token expired unless the client sent a new AUTH in time; here a connection is instead
closed and opened again, with a fresh token, before its token gets within RENEW_BEFORE_EXPIRY_SECONDS of
expiring: the same guarantee, with no second path for a new AUTH on a connection in use.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.identity.aio import ManagedIdentityCredential
from redis.credentials import CredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError

# zt: identity-non-user-applications
REDIS_SCOPE = "https://redis.azure.com/.default"
# Azure: send a new token at least 3 minutes before the old one expires. azure-identity renews a token when
# it has 5 minutes left, so a connection normally lives at least a minute.
RENEW_BEFORE_EXPIRY_SECONDS = 240


def managed_identity(client_id: str | None) -> AsyncTokenCredential:
    """The web's managed identity, as for its federated credential: the user-assigned one named, or the platform's."""
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


class EntraCredentials(CredentialProvider):
    """The user (an object id) and a current access token of that identity for Azure Cache for Redis."""

    def __init__(self, username: str, credential: AsyncTokenCredential) -> None:
        self.username, self.credential = username, credential

    async def token(self) -> AccessToken:
        try:
            return await self.credential.get_token(REDIS_SCOPE)
        except AzureError as exc:
            # A store that can't be logged in to is a store that can't be reached: the same clean handling.
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise RedisConnectionError(f"no managed identity token for Redis: {reason}") from None

    async def get_credentials_async(self) -> tuple[str, str]:
        return self.username, (await self.token()).token

    def get_credentials(self) -> tuple[str, str]:
        raise NotImplementedError("the session store's client is asynchronous: get_credentials_async")


class _ForConnection(CredentialProvider):
    """The shared credentials, noting on one connection until when the token it logged in with is valid."""

    def __init__(self, shared: EntraCredentials, connection: Any) -> None:
        self.shared, self.connection = shared, connection

    async def get_credentials_async(self) -> tuple[str, str]:
        token = await self.shared.token()
        self.connection.token_expires_on = float(token.expires_on)
        return self.shared.username, token.token


class EntraConnection(aioredis.Connection):
    token_expires_on = 0.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.credential_provider = _ForConnection(kwargs["credential_provider"], self)


class EntraSSLConnection(aioredis.SSLConnection):
    token_expires_on = 0.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.credential_provider = _ForConnection(kwargs["credential_provider"], self)


class EntraConnectionPool(aioredis.ConnectionPool):
    """Hands out only connections whose token is not about to expire; `clock` is a setting for the tests."""

    def __init__(self, *, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock

    async def ensure_connection(self, connection: Any) -> None:
        # zt: token-management
        expires_on = getattr(connection, "token_expires_on", 0.0)
        if connection.is_connected and expires_on - RENEW_BEFORE_EXPIRY_SECONDS <= self.clock():
            await connection.disconnect()  # connect() below logs in again with a current token
        await super().ensure_connection(connection)


def entra_pool(
    url: str, credential: AsyncTokenCredential, *, clock: Callable[[], float] = time.time, **options: Any
) -> EntraConnectionPool:
    """A pool for `url` (redis:// or rediss://<object id>@host:port/db, as the settings accept it)."""
    parts = urlsplit(url)
    tls = parts.scheme == "rediss"
    kwargs: dict[str, Any] = {
        "host": parts.hostname,
        "port": parts.port or 6379,
        "db": int(parts.path[1:] or 0),
        "credential_provider": EntraCredentials(unquote(parts.username or ""), credential),
        "connection_class": EntraSSLConnection if tls else EntraConnection,
        **options,
    }
    if tls:
        # The server is verified (its certificate and name; the CAs are the system's, or SSL_CERT_FILE's).
        kwargs.update(ssl_cert_reqs="required", ssl_check_hostname=True, ssl_min_version=ssl.TLSVersion.TLSv1_2)
    return EntraConnectionPool(clock=clock, **kwargs)
