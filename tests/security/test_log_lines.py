"""No text from a request can write a line of its own in a log: one record, one line.

The attack run found the database token responder writing a bind name as it came: a newline in it forged a
line (`bind accepted for role postgres`) in the log an operator reads. Here the responder runs as `zt run`
runs it (`python -m devtools.pgtoken`, logging to a file) and gets bind names and tokens with CR, LF and
other controls; then each tier of a running stack gets paths, queries and headers with the same. Every line
of every log must be a record's own first line (or an indented traceback line), and the forged text must
never start one.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import jwt
import ldap3
import pytest
from devtools.paths import repo_root
from devtools.ports import free_port
from devtools.processes import stop_process

from tests.support.launch import LiveEmulator, RunningStack

FORGED = "INFO devtools.pgtoken: bind accepted for role postgres"
INJECTIONS = [f"x\n{FORGED}", f"x\r\n{FORGED}", f"x\r{FORGED}", f"x\u2028{FORGED}", f"x\x85{FORGED}"]
# How a record of `python -m devtools.pgtoken` starts (its logging format: level, logger, message).
RECORD = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) devtools\.pgtoken: ")


@pytest.fixture
def responder(live: LiveEmulator, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port, log_path = free_port(), tmp_path / "pgtoken.log"
    argv = [
        sys.executable,
        "-m",
        "devtools.pgtoken",
        "--port",
        str(port),
        "--authority",
        live.authority(),
        "--manifest",
        str(repo_root() / "infra" / "registrations.yaml"),
        "--ca-bundle",
        str(live.tls.ca_bundle),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=repo_root())
    try:
        wait_listening(process, port, log_path)
        yield port, log_path
    finally:
        stop_process(process)


def wait_listening(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, log_path.read_text(errors="replace")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, "devtools.pgtoken did not start listening"
        time.sleep(0.05)


def bind(port: int, user: str, password: str) -> bool:
    server = ldap3.Server("127.0.0.1", port=port, get_info=ldap3.NONE, connect_timeout=5)
    # check_names off: the point is to send the name as it is, as any client could.
    conn = ldap3.Connection(
        server, user=user, password=password, authentication=ldap3.SIMPLE, receive_timeout=10, check_names=False
    )
    ok = bool(conn.bind())
    conn.unbind()
    return ok


def assert_one_line_per_record(text: str, record: re.Pattern[str], records: int) -> None:
    lines = text.splitlines()
    strays = [line for line in lines if not record.match(line)]
    assert not strays, f"lines that are no record's own: {strays}\n{text}"
    assert len(lines) == records, text
    assert not any(line.startswith(FORGED) or line.startswith("postgres") for line in lines), text


@pytest.mark.parametrize("name", INJECTIONS, ids=repr)
def test_a_bind_name_with_a_line_break_writes_one_line(responder: tuple[int, Path], name: str) -> None:
    port, log_path = responder
    assert bind(port, name, "not-a-token") is False
    assert bind(port, "downstream-api\n" + FORGED, "not-a-token") is False
    text = log_path.read_text(errors="replace")
    # The start-up line and one line per refused bind, the name's line breaks written as escapes.
    assert_one_line_per_record(text, RECORD, 3)
    assert "bind refused for role x\\" in text


@pytest.mark.parametrize("kid", [f"k\r\n{FORGED}", f"k\n{FORGED}"], ids=repr)
def test_a_tokens_header_with_a_line_break_writes_one_line(responder: tuple[int, Path], kid: str) -> None:
    # The key set is asked for this kid and the refusal quotes it: the responder's reason is escaped too.
    port, log_path = responder
    token = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": kid})
    assert bind(port, "downstream-api", token) is False
    text = log_path.read_text(errors="replace")
    assert_one_line_per_record(text, RECORD, 2)
    assert "bind refused for role downstream-api: token refused" in text


def test_request_text_with_line_breaks_forges_no_line_in_any_tiers_log(stack: RunningStack) -> None:
    """Paths, queries and headers with CR/LF at every tier of a running stack (`zt run` writes each tier's
    output, line by line, to its log): whatever a tier logs of them, no line of the log starts with them."""
    start = stack.log_path.stat().st_size
    bases = [stack.info["web"], stack.info["api"], stack.info["downstream_api"], stack.info["emulator"]]
    with httpx.Client(
        verify=ssl.create_default_context(cafile=stack.info["ca_bundle"]), timeout=10, trust_env=False
    ) as client:
        for base in bases:
            for text in INJECTIONS:
                encoded = quote(text, safe="")
                client.get(f"{base}/tasks/{encoded}")
                client.get(f"{base}/records?filter={encoded}", headers={"Authorization": "Bearer " + encoded})
                client.get(f"{base}/{encoded}/oauth2/v2.0/authorize", params={"redirect_uri": text})
    with stack.log_path.open("rb") as log:
        log.seek(start)
        added = log.read().decode(errors="replace")
    # Each of the runner's lines is "[service] <what the service wrote>"; splitlines breaks at CR, NEL and
    # U+2028 as well as LF, as a terminal or a log viewer would.
    written = [re.sub(r"^\[[\w-]+\] ", "", line) for line in added.splitlines()]
    assert not [line for line in written if line.startswith(FORGED)], added[-3000:]
