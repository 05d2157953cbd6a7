"""Every tier keeps an idle connection open longer than its clients keep one for reuse.

With equal idle timeouts on both ends (uvicorn's and httpx's are both 5 s) a client can send a request on a
connection the server is closing that very moment, and gets "server disconnected without a response". It
showed up here under load. The tiers now keep idle connections 75 s (zerotrust.serve), the api's hop to
downstream-api 30 s (zerotrust.hops): a connection idle past the old 5 s still answers.
"""

from __future__ import annotations

import http.client
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from zerotrust.hops import HOP_KEEP_ALIVE_SECONDS
from zerotrust.serve import SERVER_KEEP_ALIVE_SECONDS

from tests.support.launch import RunningStack

# Past the 5 s both uvicorn and httpx default to, well inside the 75 s the tiers keep.
IDLE_SECONDS = 6.5


def test_the_hop_lets_an_idle_connection_go_before_the_server_does() -> None:
    assert HOP_KEEP_ALIVE_SECONDS < SERVER_KEEP_ALIVE_SECONDS
    assert IDLE_SECONDS < HOP_KEEP_ALIVE_SECONDS


def _same_connection_after_idle(base: str, ca_bundle: str) -> tuple[int, int, bool]:
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        tls = ssl.create_default_context(cafile=ca_bundle)
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=tls, timeout=10)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        first.read()
        socket_before = connection.sock
        time.sleep(IDLE_SECONDS)  # the idle time is what is under test
        # http.client reopens only when it knows the socket is gone; a server-side close shows as an error here.
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        second.read()
        return first.status, second.status, connection.sock is socket_before
    finally:
        connection.close()


def test_every_tier_answers_on_a_connection_left_idle_past_five_seconds(stack: RunningStack) -> None:
    tiers = {name: stack.info[name] for name in ("web", "api", "downstream_api", "emulator")}
    with ThreadPoolExecutor(len(tiers)) as pool:
        futures = {
            name: pool.submit(_same_connection_after_idle, base, stack.info["ca_bundle"])
            for name, base in tiers.items()
        }
        answers = {name: future.result() for name, future in futures.items()}
    assert answers == dict.fromkeys(tiers, (200, 200, True))
