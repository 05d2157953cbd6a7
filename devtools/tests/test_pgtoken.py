"""The LDAP side of the token responder, driven by an independent LDAP client (ldap3's) and raw bytes.

How tokens are judged is tested against a real emulator and a real PostgreSQL in tests/postgres.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import ldap3
import pytest
from devtools.pgtoken import TokenChecker, TokenResponder

GOOD = "a-good-token"


class FakeChecker(TokenChecker):
    """Lets `downstream-api` in with GOOD only; the real checks need an identity provider."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def check(self, role: str, token: str) -> str | None:
        self.seen.append((role, token))
        return None if (role, token) == ("downstream-api", GOOD) else "refused"


@pytest.fixture
def responder() -> Iterator[tuple[TokenResponder, FakeChecker]]:
    checker = FakeChecker()
    running = TokenResponder(checker, 0).start()
    yield running, checker
    running.stop()


def bind(port: int, user: str, password: str) -> tuple[bool, str]:
    server = ldap3.Server("127.0.0.1", port=port, get_info=ldap3.NONE, connect_timeout=5)
    conn = ldap3.Connection(server, user=user, password=password, authentication=ldap3.SIMPLE, receive_timeout=5)
    ok = conn.bind()
    description = str(conn.result["description"])
    conn.unbind()
    return ok, description


def test_a_simple_bind_is_answered_with_the_checkers_verdict(responder: tuple[TokenResponder, FakeChecker]) -> None:
    running, checker = responder
    assert bind(running.port, "downstream-api", GOOD) == (True, "success")
    assert bind(running.port, "downstream-api", "another") == (False, "invalidCredentials")
    assert bind(running.port, "database-admin", GOOD) == (False, "invalidCredentials")
    # The DN and the password reach the checker unchanged, a token-sized one too.
    long_token = "x" * 1400
    assert bind(running.port, "downstream-api", long_token)[0] is False
    assert checker.seen[-1] == ("downstream-api", long_token)
    assert running.counters.snapshot() == {"accepted": 1, "refused": 3, "distinct_tokens": 1}


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\x01\x02 not ber at all", b"\x30\x84\xff\xff\xff\xff" + b"A" * 70000, b"\x30\x05\x02\x01\x01\x42\x00"],
    ids=["not-ber", "oversized", "unknown-operation"],
)
def test_garbage_closes_the_connection_and_the_responder_keeps_serving(
    responder: tuple[TokenResponder, FakeChecker], garbage: bytes
) -> None:
    running, _ = responder
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        try:
            sock.sendall(garbage)
            assert sock.recv(1024) == b""  # closed without an answer
        except ConnectionResetError:
            pass  # closed while we were still sending: also no answer
    assert bind(running.port, "downstream-api", GOOD) == (True, "success")
    assert running.counters.snapshot()["accepted"] == 1
