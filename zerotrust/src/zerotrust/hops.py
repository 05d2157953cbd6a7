"""One HTTP client per process for each tier it calls: keep-alive, TLS context built once.

Building an SSL context costs tens of milliseconds and a new connection a TLS handshake, so
neither happens per request. aiohttp's session costs a fraction of the CPU of httpx's per hop:
`zt bench-clients` (devtools/src/devtools/bench.py) measures both in one run and prints the ratios.
"""

from __future__ import annotations

import ssl

import aiohttp

# Shorter than the server's (zerotrust.serve.SERVER_KEEP_ALIVE_SECONDS), so this side always lets an
# idle connection go first and never sends a request into one the server is closing.
HOP_KEEP_ALIVE_SECONDS = 30.0


def tls_context() -> ssl.SSLContext:
    # The default context honours SSL_CERT_FILE, which is how the local dev CA is trusted; in
    # Azure the variable is unset and the system's public CAs apply. Verification is never off.
    return ssl.create_default_context()


def hop_session(base_url: str | None, *, timeout_seconds: float = 10.0, limit: int = 100) -> aiohttp.ClientSession:
    """Keep-alive connections to one tier (`base_url`), or to the identity provider and Graph (None)."""
    connector = aiohttp.TCPConnector(ssl=tls_context(), limit=limit, keepalive_timeout=HOP_KEEP_ALIVE_SECONDS)
    return aiohttp.ClientSession(
        base_url=base_url,
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_seconds, connect=3),
        # Nothing from the environment (proxies, .netrc credentials) leaks into service calls.
        trust_env=False,
        raise_for_status=False,
    )
