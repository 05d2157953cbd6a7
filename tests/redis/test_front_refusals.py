"""The local Redis admits only what Azure Cache for Redis with Microsoft Entra authentication admits: over TLS,
a first AUTH (or HELLO ... AUTH) whose user is the web's managed identity's object id and whose password is
that identity's valid token for https://redis.azure.com. Each test talks to the running front over the
network, as an attacker on the path or with a stolen identity would, and reads Redis's exact answer.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

import jwt
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import rsa
from devtools.pgtoken import OSSRDBMS_AUDIENCE
from devtools.redis_front import REDIS_AUDIENCE
from devtools.resp import encode_command

from tests.support.launch import LiveEmulator
from tests.support.redis import OBJECT_IDS, WEB_OBJECT_ID, RedisFrontStack
from tests.support.tokens import Issuer

pytestmark = [pytest.mark.live, pytest.mark.guidance("identity-non-user-applications")]

NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


@pytest.fixture
def front(redis_front: RedisFrontStack) -> RedisFrontStack:
    return redis_front


def exchange(front: RedisFrontStack, data: bytes, *, tls: bool = True) -> bytes:
    """Send `data`, then read everything until the front closes the connection (it must, within 5 s)."""
    with socket.create_connection(("127.0.0.1", front.front.port), timeout=5) as raw:
        sock = front.tls_context().wrap_socket(raw, server_hostname="localhost") if tls else raw
        answer = b""
        try:
            sock.sendall(data)
            while chunk := sock.recv(4096):
                answer += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass  # closed while we sent or read: what came before still counts
        return answer


def auth(user: str, token: str) -> bytes:
    return encode_command(b"AUTH", user.encode(), token.encode())


def claims_of(token: str) -> dict[str, Any]:
    # Only to copy a real token's claims into a deliberately wrong one; the front verifies.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def assert_refused(front: RedisFrontStack, data: bytes, answer: bytes = WRONGPASS) -> None:
    before = front.front.counters.snapshot()
    assert exchange(front, data + encode_command(b"PING")) == answer  # and nothing after it: closed
    after = front.front.counters.snapshot()
    assert after["refused"] == before["refused"] + 1 and after["accepted"] == before["accepted"]


def client(front: RedisFrontStack, token: str, **options: Any) -> redis.Redis:
    return redis.Redis(
        host="localhost",
        port=front.front.port,
        username=WEB_OBJECT_ID,
        password=token,
        ssl=True,
        ssl_ca_certs=str(front.tls.ca_bundle),
        socket_timeout=5,
        **options,
    )


def test_the_web_identitys_own_token_is_let_in_and_reaches_redis(live: LiveEmulator, front: RedisFrontStack) -> None:
    token = live.managed_identity_token("web", REDIS_AUDIENCE)
    with client(front, token) as web:
        assert web.set("web:session:x", b"sealed") and web.get("web:session:x") == b"sealed"
    # RESP3's HELLO with AUTH in it, as redis-py sends with protocol=3, is a first command too.
    with client(front, token, protocol=3) as web:
        assert web.get("web:session:x") == b"sealed"
    assert front.front.counters.snapshot()["accepted"] == 2


def test_a_command_before_auth_is_refused(front: RedisFrontStack) -> None:
    assert_refused(front, b"", NOAUTH)  # PING first, as RESP
    assert_refused(front, b"GET web:session:x\r\n", NOAUTH)  # an inline command
    assert_refused(front, encode_command(b"HELLO", b"3"), NOAUTH)  # HELLO without AUTH


def test_plain_tcp_without_tls_gets_no_redis_answer(front: RedisFrontStack) -> None:
    answer = exchange(front, auth(WEB_OBJECT_ID, "x") + encode_command(b"PING"), tls=False)
    # The TLS handshake fails: at most a TLS alert record (0x15), never a Redis reply.
    assert answer == b"" or answer[:1] == b"\x15", answer[:40]
    assert front.front.counters.snapshot() == {"accepted": 0, "refused": 0, "distinct_tokens": 0}


def test_a_password_that_is_not_a_token_is_refused(front: RedisFrontStack) -> None:
    assert_refused(front, auth(WEB_OBJECT_ID, "hunter2"))
    assert_refused(front, auth(WEB_OBJECT_ID, "a.b.c"))
    assert_refused(front, encode_command(b"AUTH", b"an-access-key"))  # the default user: access keys are off


def test_a_token_signed_by_a_key_not_in_the_key_set_is_refused(live: LiveEmulator, front: RedisFrontStack) -> None:
    real = live.managed_identity_token("web", REDIS_AUDIENCE)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = Issuer(live).sign(claims_of(real), kid=jwt.get_unverified_header(real)["kid"], key=forger)
    assert_refused(front, auth(WEB_OBJECT_ID, forged))


def test_a_token_for_another_audience_is_refused(live: LiveEmulator, front: RedisFrontStack) -> None:
    # The web identity's genuine token for Azure Database for PostgreSQL.
    postgres = live.managed_identity_token("web", OSSRDBMS_AUDIENCE)
    assert claims_of(postgres)["oid"] == WEB_OBJECT_ID
    assert_refused(front, auth(WEB_OBJECT_ID, postgres))


def test_another_identitys_valid_token_is_refused(live: LiveEmulator, front: RedisFrontStack) -> None:
    apis = live.managed_identity_token("api", REDIS_AUDIENCE)
    assert_refused(front, auth(WEB_OBJECT_ID, apis))  # for the web's user
    assert_refused(front, auth(OBJECT_IDS["api"], apis))  # for its own: it has no access policy assignment


def test_an_expired_token_is_refused(live: LiveEmulator, front: RedisFrontStack) -> None:
    token = live.managed_identity_token("web", REDIS_AUDIENCE)
    front.clock.ahead = claims_of(token)["exp"] - time.time()  # the front's clock at the token's expiry
    assert_refused(front, auth(WEB_OBJECT_ID, token))
    now = int(time.time())
    front.clock.ahead = 0
    expired = Issuer(live).sign({**claims_of(token), "iat": now - 7200, "nbf": now - 7200, "exp": now - 60})
    assert_refused(front, auth(WEB_OBJECT_ID, expired))


def test_a_connection_is_closed_once_its_token_expired(live: LiveEmulator, front: RedisFrontStack) -> None:
    token = live.managed_identity_token("web", REDIS_AUDIENCE)
    with socket.create_connection(("127.0.0.1", front.front.port), timeout=5) as raw:
        sock = front.tls_context().wrap_socket(raw, server_hostname="localhost")
        sock.sendall(auth(WEB_OBJECT_ID, token) + encode_command(b"PING"))
        assert _read(sock, 12) == b"+OK\r\n+PONG\r\n"
        front.clock.ahead = claims_of(token)["exp"] - time.time()  # no new AUTH: Azure closes it
        sock.sendall(encode_command(b"PING"))
        assert _read(sock, 1) == b""


def test_the_web_may_not_run_redis_dangerous_commands(live: LiveEmulator, front: RedisFrontStack) -> None:
    with client(front, live.managed_identity_token("web", REDIS_AUDIENCE)) as web:
        for command in (("FLUSHALL",), ("CONFIG", "GET", "*"), ("ACL", "LIST"), ("KEYS", "*")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                web.execute_command(*command)


def test_malformed_or_oversized_first_commands_are_refused(front: RedisFrontStack) -> None:
    assert exchange(front, b"*1\r\n$999999\r\n").startswith(b"-ERR Protocol error")
    assert exchange(front, b"*99\r\n").startswith(b"-ERR Protocol error")
    assert exchange(front, b"x" * 20000).startswith(b"-ERR Protocol error")


def _read(sock: ssl.SSLSocket, size: int) -> bytes:
    answer = b""
    try:
        while len(answer) < size and (chunk := sock.recv(4096)):
            answer += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass  # closed without TLS's close_notify: closed all the same
    return answer
