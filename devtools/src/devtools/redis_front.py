"""A token-checking front for the private Redis, so the local store refuses what Azure Cache for Redis with
Microsoft Entra authentication (access keys disabled) refuses.

Clients reach Redis only through this front: TLS (TLS 1.2 at least) with the dev CA's server certificate,
and a first command that must be `AUTH <user> <token>` or `HELLO <protover> AUTH <user> <token>
[SETNAME <name>]`, where the user is a managed identity's object id and the token that identity's access
token for `https://redis.azure.com` (checked by devtools.entratoken: signature against the emulator's key
set, audience, home tenant's issuer, lifetime, `oid` == the user). The object id must have an access
policy assignment: here, the identities named with --identity (from infra/registrations.yaml). Anything
else first is answered as Redis answers it (`-NOAUTH Authentication required.`, or `-WRONGPASS invalid
username-password pair or user is disabled.` for a refused credential) and the connection is closed.

Accepted, the front logs in to the private Redis (devtools.redis_server) as its one ACL user with the
per-start password that only that folder holds, and then pipes bytes both ways unread. Like Azure, which
closes a connection whose token expired unless the client sent a new AUTH, it closes the connection at the
client's first command after the token's `exp`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from zerotrust.redact import escape_controls, install_log_redaction

from devtools.entratoken import AccessTokenChecker, TokenRefused
from devtools.pgtoken import Counters, role_map
from devtools.resp import ProtocolError, encode_command, read_command
from devtools.tls import DevTls, tls_paths

log = logging.getLogger("devtools.redis_front")

# The resource Azure Cache for Redis accepts tokens for (the scope is this + /.default).
REDIS_AUDIENCE = "https://redis.azure.com"
NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
# The private Redis's only user (devtools.redis_server); the default user is off.
FRONT_USER = "zt-front"
FIRST_COMMAND_TIMEOUT_SECONDS = 10.0
CHUNK = 64 * 1024

Build = Callable[[bytes, bytes], bytes]


def server_context(tls: DevTls) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.server_cert, tls.server_key)
    return context


def answers(port: int, ca_file: Path) -> bool:
    """The front answers on 127.0.0.1:`port`: over TLS, and a command before AUTH is refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as raw:
            context = ssl.create_default_context(cafile=str(ca_file))
            with context.wrap_socket(raw, server_hostname="localhost") as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64) == NOAUTH
    except OSError:
        return False


def access_policy(manifest: Path, identities: Sequence[str]) -> dict[str, str]:
    """Object id -> identity name, for the managed identities given access (Azure's access policy assignment)."""
    object_ids = role_map(manifest)
    return {object_ids[name]: name for name in identities}


def login(args: list[bytes]) -> tuple[bytes, bytes, Build] | bytes:
    """From the first command: (user, token, the same command with other credentials); or the answer refusing it."""
    name = args[0].upper()
    if name == b"AUTH" and len(args) == 3:
        return args[1], args[2], lambda user, password: encode_command(b"AUTH", user, password)
    if name == b"AUTH" and len(args) == 2:
        return WRONGPASS  # the `default` user: no such user when access keys are disabled
    if name == b"AUTH":
        return b"-ERR wrong number of arguments for 'auth' command\r\n"
    if name == b"HELLO" and len(args) >= 5 and args[2].upper() == b"AUTH":
        version, rest = args[1], args[5:]
        if rest and (len(rest) != 2 or rest[0].upper() != b"SETNAME"):
            return b"-ERR Syntax error in HELLO option\r\n"
        return (
            args[3],
            args[4],
            lambda user, password: encode_command(b"HELLO", version, b"AUTH", user, password, *rest),
        )
    return NOAUTH


class RedisFront:
    def __init__(
        self,
        checker: AccessTokenChecker,
        allowed: Mapping[str, str],
        *,
        backend_port: int,
        password_file: Path,
        tls: ssl.SSLContext,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.checker, self.allowed = checker, {k.lower(): v for k, v in allowed.items()}
        self.backend_port, self.password_file, self.tls = backend_port, password_file, tls
        self.host, self.port = host, port
        self.counters = Counters()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def listen(self) -> asyncio.Server:
        self._server = await asyncio.start_server(
            self._client, self.host, self.port, ssl=self.tls, ssl_handshake_timeout=FIRST_COMMAND_TIMEOUT_SECONDS
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self._server

    def check(self, user: str, token: str) -> tuple[str | None, float]:
        """(None, the token's expiry) if `token` logs `user` in; else (why not, 0)."""
        if user.lower() not in self.allowed:
            return f"no access policy assignment for user {user[:64]!r}", 0.0
        try:
            claims = self.checker.claims(token, user)
        except TokenRefused as refused:
            return str(refused), 0.0
        return None, float(claims["exp"])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        task.add_done_callback(self._clients.discard)
        try:
            await self._session(reader, writer)
        except (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        try:
            while (found := read_command(buffer)) is None:
                chunk = await asyncio.wait_for(reader.read(CHUNK), FIRST_COMMAND_TIMEOUT_SECONDS)
                if not chunk:
                    return
                buffer += chunk
        except ProtocolError as exc:
            writer.write(f"-ERR Protocol error: {exc}\r\n".encode())
            return
        args, used = found
        credentials = login(args)
        if isinstance(credentials, bytes):
            self._refused(
                writer, credentials, f"first command {escape_controls(args[0][:32].decode(errors='replace'))}"
            )
            return
        raw_user, raw_token, build = credentials
        user, token = raw_user.decode(errors="replace"), raw_token.decode(errors="replace")
        reason, expires = await asyncio.to_thread(self.check, user, token)
        if reason is not None:
            self._refused(writer, WRONGPASS, f"user {escape_controls(user[:64])}: {escape_controls(reason)}")
            return
        with self.counters.lock:
            self.counters.accepted += 1
            self.counters.token_digests.add(hashlib.sha256(raw_token).hexdigest())
        log.info("accepted the token of %s (%s)", user.lower(), self.allowed[user.lower()])
        backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        try:
            password = self.password_file.read_bytes().strip()  # read per connection: a restarted Redis has a new one
            backend_writer.write(build(FRONT_USER.encode(), password) + buffer[used:])
            await _pipe_both_ways(
                reader, writer, backend_reader, backend_writer, lambda: self.checker.clock() < expires
            )
        finally:
            backend_writer.close()

    def _refused(self, writer: asyncio.StreamWriter, answer: bytes, why: str) -> None:
        with self.counters.lock:
            self.counters.refused += 1
        # The reason stays in this log: the client learns only what Redis would tell it.
        log.warning("refused %s", why)
        writer.write(answer)

    def start(self) -> RedisFront:
        """In a background thread with its own event loop (tests); returns once it listens."""
        loop = self._loop = asyncio.new_event_loop()
        listening = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.listen())
            listening.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="redis-front", daemon=True)
        self._thread.start()
        if not listening.wait(10):
            raise RuntimeError("the Redis front did not start listening")
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def close() -> None:
            server.close()
            # Connections end here, not when the loop is collected with their handlers half-way.
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(close(), loop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not loop.is_running():
            loop.close()


async def _pipe_both_ways(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    backend_reader: asyncio.StreamReader,
    backend_writer: asyncio.StreamWriter,
    token_valid: Callable[[], bool],
) -> None:
    async def to_backend() -> None:
        while chunk := await client_reader.read(CHUNK):
            if not token_valid():
                log.info("closed a connection whose token expired (no new connection, no new token)")
                return
            backend_writer.write(chunk)
            await backend_writer.drain()

    async def to_client() -> None:
        while chunk := await backend_reader.read(CHUNK):
            client_writer.write(chunk)
            await client_writer.drain()

    tasks = {asyncio.create_task(to_backend()), asyncio.create_task(to_client())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.redis_front", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend-port", type=int, required=True, help="the private Redis (devtools.redis_server)")
    parser.add_argument("--password-file", type=Path, required=True, help="its front user's per-start password")
    parser.add_argument("--authority", required=True, help="the home tenant's authority")
    parser.add_argument("--manifest", type=Path, required=True, help="infra/registrations.yaml (identity -> object id)")
    parser.add_argument("--identity", action="append", required=True, help="a managed identity given access")
    parser.add_argument("--tls-dir", type=Path, required=True, help="the dev CA's folder (devtools.tls)")
    parser.add_argument("--ca-bundle", type=Path, help="CA certificates for the key set's https (the dev CA)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    install_log_redaction()
    front = RedisFront(
        AccessTokenChecker(authority=args.authority, audience=REDIS_AUDIENCE, ca_bundle=args.ca_bundle),
        access_policy(args.manifest, args.identity),
        backend_port=args.backend_port,
        password_file=args.password_file,
        tls=server_context(tls_paths(args.tls_dir)),
        port=args.port,
    )

    async def serve() -> None:
        server = await front.listen()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
        log.info("Redis token front on 127.0.0.1:%d (TLS) -> 127.0.0.1:%d", front.port, args.backend_port)
        await stopping.wait()
        server.close()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
