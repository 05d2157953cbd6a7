"""A private Redis for the web replicas' shared session store (`make run WEB_REPLICAS=2`, and the tests).

Debian's redis-server program, never its system service: our own process, its config and working folder
owner-only under `.local/redis/`, listening on 127.0.0.1 only (protected mode on), with no persistence
(sessions are worth nothing after a restart of the stack: people sign in again). What it holds is sealed
by the web app (a copy yields no token and no cookie).

Clients never reach it directly: they go through devtools.redis_front, which checks their Entra token as
Azure Cache for Redis does. The default user is off; the one user, the front's, has a random password made
at every start, written owner-only to `front-password` here (the config holds only its SHA-256), and
none of Redis's @dangerous commands (no FLUSHALL, CONFIG, ACL, DEBUG, KEYS...).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from devtools.files import write_private


class RedisMissing(RuntimeError):
    pass


def redis_server_bin() -> str:
    """Where redis-server is (ZT_REDIS_SERVER overrides); a clear error if absent."""
    path = os.environ.get("ZT_REDIS_SERVER") or shutil.which("redis-server")
    if not path or not os.access(path, os.X_OK):
        raise RedisMissing(
            "redis-server is not installed: `sudo apt-get install -y redis-server` (`make run WEB_REPLICAS=2` "
            "and `make test` install it as root on Debian), or set ZT_REDIS_SERVER"
        )
    return path


FRONT_USER = "zt-front"
FRONT_LOGIN_FILE = "front-password"


def config(root: Path, port: int, password: str) -> str:
    digest = hashlib.sha256(password.encode()).hexdigest()
    return "\n".join(
        [
            "# Written by devtools.redis_server at every start.",
            "bind 127.0.0.1",
            "protected-mode yes",
            f"port {port}",
            f'dir "{root}"',
            'save ""',
            "appendonly no",
            "daemonize no",
            "loglevel notice",
            'logfile ""',
            "user default off",
            f"user {FRONT_USER} on #{digest} ~* &* +@all -@dangerous",
            "",
        ]
    )


class RedisServer:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.root / "redis.log"

    @property
    def password_file(self) -> Path:
        return self.root / FRONT_LOGIN_FILE

    def argv(self) -> list[str]:
        """The command, with a new password for the front user (never printed) and the config holding its hash."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        password = secrets.token_urlsafe(32)
        write_private(self.password_file, password.encode())
        conf = self.root / "redis.conf"
        write_private(conf, config(self.root, self.port, password).encode())
        return [redis_server_bin(), str(conf)]

    def start(self, timeout: float = 15) -> RedisServer:
        """Started in the background, for tests: returns once it answers PING."""
        argv = self.argv()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while not answers_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start:\n{self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def answers_ping(port: int) -> bool:
    """A Redis answers on 127.0.0.1:`port` (a bare TCP accept is not enough: it may still be loading).
    Without credentials it answers NOAUTH: up, and refusing as it should."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Foreground redis-server for `zt run`: the program replaces this process, so the supervisor's
    signals reach it directly."""
    parser = argparse.ArgumentParser(prog="python -m devtools.redis_server", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        command = RedisServer(args.root, args.port).argv()
    except (RedisMissing, OSError) as exc:
        print(f"devtools.redis_server: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(command[0], command)  # noqa: S606 - our own argv  # nosec B606


if __name__ == "__main__":
    raise SystemExit(main())
