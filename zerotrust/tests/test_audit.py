"""The audit log: a line per decision (refusals too), whole lines under concurrency, owner-only, ids only, and a
rotation that truncates in place."""

from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from zerotrust.audit import AuditLog, audit_requests, entry, refuse
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


def _allowed(permissions: list[str], method: str = "GET", status: int = 200) -> dict[str, Any]:
    return entry(
        "api",
        decision="allow",
        reason="permission",
        principal=ALICE,
        user=None,
        permissions=permissions,
        required=[],
        route="/tasks",
        method=method,
        status=status,
        correlation_id="0af7651916cd43dd8448eb211c80319c",
    )


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lines_written_from_many_threads_never_interleave(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit" / "api.jsonl")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: log.write(_allowed([f"P{n}"])), range(2000)))
    lines = _lines(log.path)
    assert sorted(int(str(line["permissions"][0])[1:]) for line in lines) == list(range(2000))  # type: ignore[index]
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700


def test_a_rotation_that_truncates_in_place_keeps_the_next_line_whole_and_first(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "api.jsonl")
    log.write(_allowed(["Tasks.Read"]))
    (tmp_path / "api.jsonl.1").write_bytes(log.path.read_bytes())  # copytruncate: copy, then truncate
    log.path.write_bytes(b"")
    log.write(_allowed(["Tasks.ReadWrite"], "POST", 201))
    assert [line["permissions"] for line in _lines(log.path)] == [["Tasks.ReadWrite"]]


def test_each_decision_leaves_one_line_of_ids_refusals_too_and_an_undecided_request_none(tmp_path: Path) -> None:
    app = FastAPI()

    @app.get("/tasks/{task_id}")
    def read(task_id: str, request: Request) -> dict[str, str]:
        if task_id == "refused":
            refuse(request.state, "insufficient_scope", ("Tasks.Read",))
        elif task_id != "public":
            request.state.principal = ALICE
            request.state.permissions_used = ["Tasks.Read"]
        return {}

    audit_requests(app, "api", tmp_path / "api.jsonl")
    with TestClient(app) as client:
        assert client.get("/tasks/secret-id-1").status_code == 200
        assert client.get("/tasks/refused").status_code == 200
        assert client.get("/tasks/public").status_code == 200
    allowed, refused = _lines(tmp_path / "api.jsonl")
    assert allowed["route"] == "/tasks/{task_id}" and allowed["status"] == 200
    assert allowed["decision"] == "allow" and allowed["permissions"] == ["Tasks.Read"]
    assert allowed["client_app_id"] == "web-client" and allowed["token_type"] == "delegated"
    assert (allowed["tenant_id"], allowed["object_id"]) == ("tenant-1", "object-1")
    assert refused["decision"] == "deny" and refused["reason"] == "insufficient_scope"
    assert refused["required"] == ["Tasks.Read"] and refused["permissions"] == [] and refused["object_id"] is None
    text = (tmp_path / "api.jsonl").read_text()
    for personal in ("secret-id-1", "Alice", "alice@contoso.test", "pairwise"):
        assert personal not in text
