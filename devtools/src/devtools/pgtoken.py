"""An LDAP simple-bind responder that checks an Entra access token the way Azure Database for
PostgreSQL does, so the local cluster refuses what Azure would refuse.

PostgreSQL's `ldap` method in simple-bind mode (`ldapprefix="" ldapsuffix=""`) sends the role name as
the bind DN and the client's password as the simple credential. Here the password must be an access
token that:

- is signed (RS256 only) by a key of the identity provider's published key set (JWKS over https,
  verified against the dev CA);
- has the audience of Azure Database for PostgreSQL (`https://ossrdbms-aad.database.windows.net`);
- was issued by the home tenant and is inside its lifetime (nbf/iat/exp);
- belongs to the identity the role is mapped to: Azure maps a role created with
  `pgaadauth_create_principal_with_oid` to the managed identity's object id, so a token of another
  identity is refused even when it is otherwise valid.

Anything else gets `invalidCredentials` and PostgreSQL answers `LDAP authentication failed for user "<role>"`.
The BER framing is pyasn1's and the message shapes are ldap3's RFC 4511 definitions: no codec is
written here.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import signal
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import jwt
import yaml
from ldap3.protocol.rfc4511 import (
    LDAPDN,
    BindResponse,
    LDAPMessage,
    LDAPString,
    MessageID,
    ProtocolOp,
    ResultCode,
)
from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error, SubstrateUnderrunError
from zerotrust.redact import escape_controls, install_log_redaction

log = logging.getLogger("devtools.pgtoken")

# The resource Azure Database for PostgreSQL accepts tokens for (the scope is this + /.default).
OSSRDBMS_AUDIENCE = "https://ossrdbms-aad.database.windows.net"
# A bind carrying a token is a few KB; anything far bigger is not PostgreSQL talking.
MAX_MESSAGE_BYTES = 64 * 1024
READ_TIMEOUT_SECONDS = 10.0


def role_map(manifest: Path) -> dict[str, str]:
    """Role name -> managed identity object id, from infra/registrations.yaml.

    In Azure the role is created by `pgaadauth_create_principal_with_oid(<name>, <object id>, 'service')`;
    here the role name is the managed identity's name, as in that call.
    """
    data = yaml.safe_load(manifest.read_text())
    return {name: str(spec["object_id"]).lower() for name, spec in (data.get("managed_identities") or {}).items()}


@dataclass
class Counters:
    """What the responder decided, for tests: how many binds, and how many distinct tokens."""

    accepted: int = 0
    refused: int = 0
    # sha256 of each accepted token (never the token itself): counts distinct credentials.
    token_digests: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {"accepted": self.accepted, "refused": self.refused, "distinct_tokens": len(self.token_digests)}


class TokenChecker:
    """Verifies one bind: role name + token."""

    def __init__(
        self, *, authority: str, roles: Mapping[str, str], ca_bundle: Path | None, audience: str = OSSRDBMS_AUDIENCE
    ) -> None:
        self.authority = authority.rstrip("/")
        self.issuer = f"{self.authority}/v2.0"
        self.roles = dict(roles)
        self.audience = audience
        self._ssl = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        self._jwks: jwt.PyJWKClient | None = None
        self._jwks_lock = threading.Lock()

    def _keys(self) -> jwt.PyJWKClient:
        with self._jwks_lock:
            if self._jwks is None:
                # Discovery names the key set, as for any relying party; read once, then the client
                # refreshes the keys itself when a token names an unknown kid (rotation). The issuer is the
                # configuration's https URL, so urlopen's other schemes never come into play.
                url = f"{self.issuer}/.well-known/openid-configuration"
                with urlopen(url, timeout=5, context=self._ssl) as answer:  # noqa: S310  # nosec B310
                    jwks_uri = json.loads(answer.read())["jwks_uri"]
                self._jwks = jwt.PyJWKClient(jwks_uri, ssl_context=self._ssl, timeout=5, lifespan=300)
            return self._jwks

    def check(self, role: str, token: str) -> str | None:
        """None if `token` lets `role` in; otherwise why not (logged, never sent to the client)."""
        expected_oid = self.roles.get(role)
        if expected_oid is None:
            return f"role {role[:64]!r} is not mapped to a managed identity"
        try:
            key = self._keys().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "oid"]},
            )
        except (jwt.PyJWTError, OSError, KeyError, ValueError) as exc:
            return f"token refused: {type(exc).__name__}: {str(exc)[:120]}"
        if str(claims.get("oid", "")).lower() != expected_oid:
            return f"token of object id {str(claims.get('oid'))[:40]} used for role {role[:64]!r}"
        return None


def _bind_response(message_id: int, ok: bool, diagnostic: str) -> bytes:
    response = BindResponse()
    response["resultCode"] = ResultCode("success" if ok else "invalidCredentials")
    response["matchedDN"] = LDAPDN("")
    response["diagnosticMessage"] = LDAPString(diagnostic)
    op = ProtocolOp()
    op["bindResponse"] = response
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = op
    return bytes(encoder.encode(message))


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(READ_TIMEOUT_SECONDS)
        buffer = b""
        with contextlib.suppress(OSError):
            while True:
                message, buffer = self._next_message(sock, buffer)
                if message is None:
                    return
                op = message["protocolOp"]
                name = op.getName()
                if name == "unbindRequest":
                    return
                if name != "bindRequest":
                    # PostgreSQL's simple-bind mode never searches; nothing else is served.
                    return
                sock.sendall(self._bind(int(message["messageID"]), op["bindRequest"]))

    def _next_message(self, sock: socket.socket, buffer: bytes) -> tuple[Any, bytes]:
        while True:
            if buffer:
                try:
                    message, rest = decoder.decode(buffer, asn1Spec=LDAPMessage())
                    return message, bytes(rest)
                except SubstrateUnderrunError:
                    pass
                except PyAsn1Error:
                    return None, b""
            if len(buffer) > MAX_MESSAGE_BYTES:
                return None, b""
            chunk = sock.recv(16384)
            if not chunk:
                return None, b""
            buffer += chunk

    def _bind(self, message_id: int, request: Any) -> bytes:
        role = str(request["name"])
        auth = request["authentication"]
        if auth.getName() != "simple":
            return _bind_response(message_id, False, "only simple bind is served")
        token = bytes(auth["simple"]).decode("utf-8", errors="replace")
        reason = self.server.checker.check(role, token)
        counters = self.server.counters
        with counters.lock:
            if reason is None:
                counters.accepted += 1
                counters.token_digests.add(hashlib.sha256(token.encode()).hexdigest())
            else:
                counters.refused += 1
        # The bind name is the client's text: escaped, so a CR or LF in it can't write a line of its own.
        shown = escape_controls(role[:64])
        if reason is None:
            log.info("bind accepted for role %s", shown)
            return _bind_response(message_id, True, "")
        log.warning("bind refused for role %s: %s", shown, escape_controls(reason))
        # The reason stays in this log: the client learns only that the credential was refused.
        return _bind_response(message_id, False, "invalid credentials")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], checker: TokenChecker) -> None:
        self.checker = checker
        self.counters = Counters()
        super().__init__(address, _Handler)


class TokenResponder:
    """The responder in a background thread (tests) or the foreground (`python -m devtools.pgtoken`)."""

    def __init__(self, checker: TokenChecker, port: int, host: str = "127.0.0.1") -> None:
        self._server = _Server((host, port), checker)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def counters(self) -> Counters:
        return self._server.counters

    def start(self) -> TokenResponder:
        self._thread = threading.Thread(target=self._server.serve_forever, name="pgtoken", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.pgtoken", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--authority", required=True, help="the home tenant's authority, e.g. https://localhost:8443/<tid>"
    )
    parser.add_argument("--manifest", type=Path, required=True, help="infra/registrations.yaml (role -> object id)")
    parser.add_argument("--ca-bundle", type=Path, help="CA certificates for the key set's https (the dev CA)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    install_log_redaction()
    checker = TokenChecker(authority=args.authority, roles=role_map(args.manifest), ca_bundle=args.ca_bundle)
    responder = TokenResponder(checker, args.port)

    def stop(_signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever, which runs in this thread: hand it to another.
        threading.Thread(target=responder.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("LDAP token responder on 127.0.0.1:%d", responder.port)
    responder.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
