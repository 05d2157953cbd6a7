"""The audit log: whole lines under concurrency, owner-only, ids only, and a rotation that truncates in place."""

from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from zerotrust.audit import AuditLog, audit_requests, entry
from zerotrust.tokens import Principal

ALICE = Principal.model_validate(
    {
        "tid": "tenant-1",
        "oid": "object-1",
        "sub": "pairwise",
        "aud": "api",
        "iss": "https://issuer/tenant-1/v2.0",
        "azp": "web-client",
        "scp": "Tasks.Read",
        "ver": "2.0",
        "name": "Alice Example",
        "preferred_username": "alice@contoso.test",
        "exp": 2_000_000_000,
    }
)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lines_written_from_many_threads_never_interleave(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit" / "api.jsonl")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: log.write(entry("api", ALICE, [f"P{n}"], "/tasks", "GET", 200)), range(2000)))
    lines = _lines(log.path)
    assert sorted(int(str(line["permissions"][0])[1:]) for line in lines) == list(range(2000))  # type: ignore[index]
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700


def test_a_rotation_that_truncates_in_place_keeps_the_next_line_whole_and_first(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "api.jsonl")
    log.write(entry("api", ALICE, ["Tasks.Read"], "/tasks", "GET", 200))
    (tmp_path / "api.jsonl.1").write_bytes(log.path.read_bytes())  # copytruncate: copy, then truncate
    log.path.write_bytes(b"")
    log.write(entry("api", ALICE, ["Tasks.ReadWrite"], "/tasks", "POST", 201))
    assert [line["permissions"] for line in _lines(log.path)] == [["Tasks.ReadWrite"]]


def test_an_authorized_request_leaves_ids_only_and_a_refused_one_nothing(tmp_path: Path) -> None:
    app = FastAPI()

    @app.get("/tasks/{task_id}")
    def read(task_id: str, request: Request) -> dict[str, str]:
        if task_id != "refused":
            request.state.principal = ALICE
            request.state.permissions_used = ["Tasks.Read"]
        return {}

    audit_requests(app, "api", tmp_path / "api.jsonl")
    with TestClient(app) as client:
        assert client.get("/tasks/secret-id-1").status_code == 200
        assert client.get("/tasks/refused").status_code == 200
    (line,) = _lines(tmp_path / "api.jsonl")
    assert line["route"] == "/tasks/{task_id}" and line["status"] == 200
    assert line["client_app_id"] == "web-client" and line["token_type"] == "delegated"
    text = (tmp_path / "api.jsonl").read_text()
    for personal in ("secret-id-1", "Alice", "alice@contoso.test", "pairwise"):
        assert personal not in text
