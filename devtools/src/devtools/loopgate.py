"""The door of the container stack (docker-compose.yml): published ports relayed to loopback.

Every service of the compose stack shares one network namespace and listens on 127.0.0.1, exactly as under
`make run`, so https://localhost:8443 is the same issuer for the browser, the tiers and the tokens, and the
identity emulator keeps its loopback-only rule. Docker hands a published port to the namespace's own
address (eth0), where nothing of the stack listens: this process listens there on each port and relays
every connection to 127.0.0.1 on the same port, bytes unchanged (TLS stays end to end). Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import socket
import sys
from collections.abc import Sequence

CHUNK = 64 * 1024


def own_addresses() -> list[str]:
    """The namespace's addresses other than loopback (Docker maps the container's host name to them)."""
    found = []
    with contextlib.suppress(OSError):
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM):
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if not (address.is_loopback or address.is_link_local or address.is_unspecified):
                found.append(str(address))
    return list(dict.fromkeys(found))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        # Half-close: the other side may still be answering (a client that shut its sending side).
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def _relay(port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        writer.close()  # nothing listens yet: the client sees a closed connection, as without the relay
        return
    try:
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        for end in (writer, up_writer):
            end.close()


async def serve(addresses: Sequence[str], ports: Sequence[int], ready: asyncio.Event | None = None) -> None:
    servers = []
    for address in addresses:
        for port in ports:

            async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, port: int = port) -> None:
                await _relay(port, r, w)

            servers.append(await asyncio.start_server(handle, address, port))
    print(f"devtools.loopgate: {', '.join(addresses)} ports {', '.join(map(str, ports))} -> 127.0.0.1", flush=True)
    if ready is not None:
        ready.set()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
        await server.wait_closed()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.loopgate", description=__doc__.split("\n")[0])
    parser.add_argument("ports", type=int, nargs="+", metavar="PORT")
    parser.add_argument("--address", action="append", help="listen here (default: the namespace's own addresses)")
    args = parser.parse_args(argv)
    addresses = args.address or own_addresses()
    if not addresses:
        print("devtools.loopgate: no address besides loopback to listen on; pass --address", file=sys.stderr)
        return 2
    if any(ipaddress.ip_address(a) == ipaddress.ip_address("127.0.0.1") for a in addresses):
        print("devtools.loopgate: 127.0.0.1 is where the services listen, not the gate", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(addresses, args.ports))
    except OSError as exc:
        print(f"devtools.loopgate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
