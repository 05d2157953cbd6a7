"""Request bodies over the cap at every tier, the web app and the identity provider included, over real
sockets against `make run`'s stack (security catalog, section (f); tests/security/test_limits.py has the
APIs' streamed bodies and every tier's headers).

"Before parsing" is shown, not assumed: the request declares its body and sends none of it, so a tier that
waited to read it would answer nothing at all. A chunked body (no length declared) is counted as it arrives.
After each refusal the tier answers its next caller normally.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.test_chain import sign_in
from tests.support.launch import RunningStack
from tests.support.people import Person
from tests.support.tokens import Api, Issuer

pytestmark = pytest.mark.guidance("protect-api")

# A tier that answers within this long did not wait for the body it was told of.
ANSWER_SECONDS = 5.0
DECLARED = 100 * 1024 * 1024  # 100 MB, never sent


def _head_only(stack: RunningStack, base: str, method_path: str, headers: dict[str, str]) -> tuple[int, str]:
    """Sends the request line and headers, none of the body they declare; the status and the answer's head."""
    parts = urlsplit(base)
    assert parts.hostname and parts.port
    lines = [f"{method_path} HTTP/1.1", f"Host: {parts.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
    raw = socket.create_connection((parts.hostname, parts.port), timeout=ANSWER_SECONDS)
    sock: socket.socket = raw
    if parts.scheme == "https":
        sock = ssl.create_default_context(cafile=stack.info["ca_bundle"]).wrap_socket(raw, server_hostname="localhost")
    with sock:
        # A tier may answer and close before a long head is all sent: its answer is still there to read.
        with contextlib.suppress(ssl.SSLEOFError, BrokenPipeError, ConnectionResetError):
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        with contextlib.suppress(ssl.SSLEOFError, ConnectionResetError):
            while b"\r\n\r\n" not in answer and (chunk := sock.recv(4096)):  # a timeout here fails the test
                answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 "), f"no answer from {base} ({head[:80]!r})"
    return int(head.split()[1]), head.lower()


def _still_serving(stack: RunningStack, base: str) -> None:
    verify = ssl.create_default_context(cafile=stack.info["ca_bundle"])
    with httpx.Client(verify=verify, timeout=10) as http:
        assert http.get(f"{base}/healthz").status_code == 200


def _token_endpoint(stack: RunningStack) -> str:
    return f"/{stack.info['tenants']['contoso']}/oauth2/v2.0/token"


@pytest.fixture(scope="module")
def alice_cookie(stack: RunningStack) -> Iterator[str]:
    alice = Person()
    sign_in(alice, stack, "alice@contoso.test")
    cookie = alice.jar.get("__Host-session")
    assert cookie
    yield cookie
    alice.http.close()


def test_a_form_declared_over_the_cap_is_413_at_the_web_app_before_a_byte_is_read(
    stack: RunningStack, alice_cookie: str
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(DECLARED)}
    # The identity provider's answer takes posts from anyone; the pages' forms, from a signed-in person.
    for path, extra in (("/auth/callback", {}), ("/tasks", {"Cookie": f"__Host-session={alice_cookie}"})):
        started = time.monotonic()
        status, head = _head_only(stack, stack.web, f"POST {path}", {**form, **extra})
        assert status == 413 and "x-content-type-options: nosniff" in head, (path, head)
        assert time.monotonic() - started < ANSWER_SECONDS
    _still_serving(stack, stack.web)


@pytest.mark.parametrize("name", ["api", "downstream-api"])
def test_a_body_declared_over_the_cap_is_413_at_each_api_before_a_byte_is_read(
    stack: RunningStack, issuer: Issuer, targets: dict[str, Api], name: str
) -> None:
    api = targets[name]
    token = issuer.token(api, scp=" ".join(api.write_scopes))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Length": str(DECLARED)}
    status, head = _head_only(stack, api.base, f"POST {api.write_path}", headers)
    assert status == 413, head
    _still_serving(stack, api.base)


@pytest.mark.parametrize("name", ["api", "downstream-api"])
def test_an_anonymous_body_is_not_read_the_401_comes_first(
    stack: RunningStack, targets: dict[str, Api], name: str
) -> None:
    # Small enough to pass the size cap: only the caller's missing token can stop it, and does, unread.
    api = targets[name]
    headers = {"Content-Type": "application/json", "Content-Length": "1000"}
    status, head = _head_only(stack, api.base, f"POST {api.write_path}", headers)
    assert status == 401, head
    assert f'www-authenticate: bearer realm="{api.realm}"' in head


def test_a_form_declared_over_the_cap_is_413_at_the_identity_provider(stack: RunningStack) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(DECLARED)}
    status, head = _head_only(stack, stack.info["emulator"], f"POST {_token_endpoint(stack)}", headers)
    assert status == 413, head
    _still_serving(stack, stack.info["emulator"])


def _chunks(total: int, first: bytes = b"") -> Iterator[bytes]:
    yield first
    for _ in range(total // 4096):
        yield b"a" * 4096


@pytest.mark.parametrize("path", ["/auth/callback", "/tasks"])
def test_a_chunked_form_over_the_cap_is_413_at_the_web_app_while_it_streams(
    stack: RunningStack, alice_cookie: str, path: str
) -> None:
    with httpx.Client(timeout=15) as http:
        r = http.post(
            f"{stack.web}{path}",
            content=_chunks(1024 * 1024, b"title="),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"__Host-session={alice_cookie}"},
        )
    assert "content-length" not in r.request.headers  # sent chunked: nothing declared to refuse it by
    assert r.status_code == 413 and "Too much data" in r.text, r.text[:300]
    _still_serving(stack, stack.web)


def test_a_chunked_form_over_the_cap_is_413_at_the_identity_provider_while_it_streams(stack: RunningStack) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=stack.info["ca_bundle"]), timeout=15) as http:
        r = http.post(
            f"{stack.info['emulator']}{_token_endpoint(stack)}",
            content=_chunks(1024 * 1024, b"grant_type="),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text[:300]
    _still_serving(stack, stack.info["emulator"])


def test_oversized_or_too_many_headers_at_the_identity_provider_are_refused_never_served(stack: RunningStack) -> None:
    emulator = stack.info["emulator"]
    # 400 from uvicorn when the header arrives in pieces (TLS records of 16 KB), 431 when it arrives whole.
    status, _ = _head_only(stack, emulator, "GET /healthz", {"X-Padding": "a" * 70_000})
    assert status in (400, 431)
    status, head = _head_only(stack, emulator, "GET /healthz", {f"X-H{n}": "v" * 30 for n in range(150)})
    assert status == 431 and "x-content-type-options: nosniff" in head, head
    _still_serving(stack, emulator)
