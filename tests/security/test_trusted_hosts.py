"""Every tier answers only to its own host names: any other Host header is a 400 before the app sees it.

A page on another site can resolve its own name to 127.0.0.1 (DNS rebinding) and reach a developer's local
services from their browser, same-origin with itself; a forged Host can make a service link elsewhere. Each
tier of a running stack (`zt run`) gets the shapes such a request takes, then its own names as a control.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.launch import RunningStack

TIERS = ["web", "api", "downstream_api", "emulator", "emulator_front_channel"]


def foreign_hosts(port: int) -> list[str]:
    return [
        "evil.test",
        f"evil.test:{port}",
        f"localhost.evil.test:{port}",
        f"127.0.0.1.nip.io:{port}",
        f"localhost:{port}.evil.test",
        f"evil.test@localhost:{port}",
        f"localhost:{port}/evil.test",
        "localhost:1",
        f"LOCALHOST.:{port}",
        "",
    ]


def base_of(stack: RunningStack, tier: str) -> str:
    return str(stack.info[tier])


@pytest.mark.parametrize("tier", TIERS)
def test_a_foreign_host_header_is_a_400_at_every_tier(stack: RunningStack, http: httpx.Client, tier: str) -> None:
    base = base_of(stack, tier)
    port = urlsplit(base).port
    assert port is not None
    # A page, a protected route, the health check: all refused alike, before any of them runs.
    paths = {"web": "/", "api": "/tasks", "downstream_api": "/records"}.get(tier, "/admin")
    for host in foreign_hosts(port):
        for path in ("/healthz", paths):
            r = http.get(base + path, headers={"Host": host})
            assert r.status_code == 400, (host, path, r.status_code, r.text[:200])
            assert r.json()["error"] == "invalid_request", r.text
            assert "host name" in r.json()["error_description"]
            assert "location" not in r.headers and "set-cookie" not in r.headers
            assert "evil" not in r.text  # the host is not echoed back


@pytest.mark.parametrize("tier", TIERS)
def test_the_tiers_own_names_are_answered(stack: RunningStack, http: httpx.Client, tier: str) -> None:
    base = base_of(stack, tier)
    port = urlsplit(base).port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LocalHost:{port}"):
        r = http.get(base + "/healthz", headers={"Host": host})
        assert r.status_code == 200, (host, r.text)


def raw_request(base: str, head: bytes) -> bytes:
    """Bytes an HTTP client library would not send (two Host headers, none): plain http tiers only."""
    parts = urlsplit(base)
    assert parts.scheme == "http" and parts.port is not None
    with socket.create_connection((parts.hostname or "localhost", parts.port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("tier", ["web", "emulator_front_channel"])
def test_two_host_headers_or_none_are_refused(stack: RunningStack, tier: str) -> None:
    base = base_of(stack, tier)
    own = urlsplit(base).netloc.encode()
    two = raw_request(
        base, b"GET /healthz HTTP/1.1\r\nHost: " + own + b"\r\nHost: evil.test\r\nConnection: close\r\n\r\n"
    )
    assert two.startswith(b"HTTP/1.1 400"), two[:200]
    none = raw_request(base, b"GET /healthz HTTP/1.0\r\nConnection: close\r\n\r\n")
    assert none.startswith(b"HTTP/1.1 400"), none[:200]
