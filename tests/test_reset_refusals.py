"""`make reset` refuses, changing nothing, a stack it cannot reset whole (devtools/reset.py); in process. The resets
themselves, and the refusal of another clone's stack, are proven on a real stack in tests/e2e/test_reset.py."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from devtools.files import write_private
from devtools.reset import Reset, ResetRefused


def _local(tmp_path: Path, **stack: object) -> Path:
    local = tmp_path / "local"
    (local / "emulator").mkdir(parents=True)
    (local / "downstream").mkdir()
    (local / "emulator" / "admin-state.json").write_text(json.dumps({"disabled": [["t", "o"]]}))
    with sqlite3.connect(local / "downstream" / "records.db") as db:
        db.execute("CREATE TABLE records (id TEXT)")
        db.execute("CREATE TABLE provisioned_users (id TEXT)")
        db.execute("INSERT INTO records VALUES ('a task')")
    db.close()
    if stack:
        write_private(local / "stack.json", json.dumps(stack).encode())
    return local


def _unchanged(local: Path) -> None:
    assert (local / "emulator" / "admin-state.json").exists()
    with sqlite3.connect(local / "downstream" / "records.db") as db:
        assert db.execute("SELECT count(*) FROM records").fetchone() == (1,)
    db.close()


def test_a_running_stack_on_postgresql_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    # This process stands in for a live runner; its stack.json says the tasks are in PostgreSQL.
    local = _local(tmp_path, runner_pid=os.getpid(), database="postgresql+psycopg://downstream-api@localhost/db")
    with pytest.raises(ResetRefused, match=r"PostgreSQL \(DB=postgres\)"):
        Reset(local, web_port=1).run()
    _unchanged(local)


def test_a_stopped_stack_is_reset_on_disk(tmp_path: Path) -> None:
    # A stack.json left by a runner that is gone (a pid no process has) counts as stopped.
    local = _local(tmp_path, runner_pid=2**22 + 1)
    done = Reset(local, web_port=1).run()
    assert done[0] == "identity emulator (stopped): consents, revocations and disabled users forgotten", done
    assert "downstream-api: deleted 1 tasks (and their shares), 0 provisioned users (SCIM)" in done
    assert "web: no data yet" in done
    assert not (local / "emulator" / "admin-state.json").exists()
    with sqlite3.connect(local / "downstream" / "records.db") as db:
        assert db.execute("SELECT count(*) FROM records").fetchone() == (0,)
    db.close()
