"""Only the host names a service is configured for: any other Host header is a 400 before the app sees it.

A page on another site can resolve its own name to 127.0.0.1 (DNS rebinding) and so reach a service on a
developer's machine from their browser, same-origin with itself; or a request can carry a forged Host to
make a service build links to another site. Neither gets past an allowlist of this service's own names.
Plain ASGI, a set lookup per request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# host or host:port, as a Host header carries them (RFC 9110 7.2): a name or IPv4 address, or an IPv6 one in
# brackets. Anything else (userinfo, a path, a space) names no host of ours.
_HOST = re.compile(r"\A(?P<name>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?\Z")
_REFUSAL = {
    "error": "invalid_request",
    "error_description": "This service does not answer to that host name (Host header). Use its configured "
    "address; an operator adds names with <SERVICE>_ALLOWED_HOSTS.",
}


def valid_entry(entry: str) -> bool:
    """An allowlist entry: `host` (any port) or `host:port`, lower case, no wildcard."""
    return _HOST.match(entry) is not None


def host_entries(value: tuple[str, ...]) -> tuple[str, ...]:
    """The ALLOWED_HOSTS setting's check."""
    for item in value:
        if not valid_entry(item):
            raise ValueError(f"{item[:60]!r} is not a host name or host:port (lower case, no wildcard)")
    return value


def public_url(value: str) -> str:
    """The PUBLIC_URL setting's check: an https address, no user, query or fragment; empty for the default."""
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.query or parts.fragment:
        raise ValueError("must be this service's https address, e.g. https://api.contoso.com (no query or fragment)")
    return value.rstrip("/")


def default_hosts(public_base_url: str, port: int, *, loopback: bool) -> tuple[str, ...]:
    """The public address's host; for a `loopback` address also this machine's names on the service's own
    `port` (a replica behind a local front listens on its own port, and is asked for its health there)."""
    own = urlsplit(public_base_url).netloc.lower()
    return tuple(dict.fromkeys((own, *(f"{name}:{port}" for name in LOOPBACK_NAMES)))) if loopback else (own,)


class TrustedHosts:
    """`allowed`: `host:port` entries match that port only; a bare `host` matches it on any port."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        entries = {entry.lower() for entry in allowed}
        self.exact = frozenset(entries)
        self.any_port = frozenset(e for e in entries if (m := _HOST.match(e)) is not None and m["port"] is None)
        self.body = json.dumps(_REFUSAL).encode()

    def allows(self, host: str) -> bool:
        if host in self.exact:
            return True
        found = _HOST.match(host)
        return found is not None and found["name"] in self.any_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hosts = [v for k, v in scope["headers"] if k == b"host"]
        if len(hosts) == 1 and self.allows(hosts[0].decode("latin-1").lower()):
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


__all__ = ["LOOPBACK_NAMES", "TrustedHosts", "default_hosts", "host_entries", "public_url", "valid_entry"]
