"""`python -m devtools.probe SPEC...`: health checks of the container stack's development services, which have
no /healthz (docker-compose.yml's healthchecks; exit 0 when every SPEC holds, else 1 and what failed).

SPECs, as `zt run` decides those services are ready (devtools.layout):
  tcp:PORT    something accepts on 127.0.0.1:PORT (the LDAP token responder)
  redis:PORT  the Redis on 127.0.0.1:PORT answers PING (a bare accept is not enough while it loads)
  rediss:PORT:CA_FILE
              its token front (devtools.redis_front) on 127.0.0.1:PORT answers over TLS, its certificate
              verified against CA_FILE for localhost, and refuses a command before AUTH
  file:PATH   PATH exists (the cluster's ready file, written once its roles and database exist)
  gate:PORT   devtools.loopgate accepts on the namespace's own address at PORT
Without arguments, ZT_PROBE holds the SPECs (the devtools image's HEALTHCHECK)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from devtools.loopgate import own_addresses
from devtools.redis_server import answers_ping

TIMEOUT = 2.0


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return True
    except OSError:
        return False


def holds(spec: str) -> bool:
    kind, _, value = spec.partition(":")
    if kind == "file":
        return Path(value).exists()
    front_port, _, ca_file = value.partition(":")
    if kind == "rediss" and front_port.isdigit() and ca_file:
        from devtools.redis_front import answers  # only this probe needs the front's imports

        return answers(int(front_port), Path(ca_file))
    if kind not in ("tcp", "redis", "gate") or not value.isdigit():
        raise ValueError(f"{spec!r} is not a probe (tcp:PORT, redis:PORT, rediss:PORT:CA_FILE, file:PATH, gate:PORT)")
    port = int(value)
    if kind == "redis":
        return answers_ping(port)
    if kind == "gate":
        addresses = own_addresses()
        return bool(addresses) and all(_accepts(a, port) for a in addresses)
    return _accepts("127.0.0.1", port)


def main(argv: Sequence[str] | None = None) -> int:
    specs = list(sys.argv[1:] if argv is None else argv) or os.environ.get("ZT_PROBE", "").split()
    if not specs:
        print("devtools.probe: nothing to probe (give SPECs or set ZT_PROBE)", file=sys.stderr)
        return 2
    try:
        failed = [s for s in specs if not holds(s)]
    except ValueError as exc:
        print(f"devtools.probe: {exc}", file=sys.stderr)
        return 2
    if failed:
        print(f"devtools.probe: not ready: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
