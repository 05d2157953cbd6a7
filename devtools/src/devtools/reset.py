"""`zt reset` (`make reset`): the local stack's demo state back to its start, for the next workshop module.

What a stack remembers lives under .local/: downstream-api's tasks, shares and SCIM provisioning in
downstream/records.db, the web's sessions (with each user's sealed token cache) in web/sessions.sqlite3,
and the emulator's administrative state (consents, revocations, disabled users) in
emulator/admin-state.json, its sign-in sessions and directory changes (renamed, deleted users) in memory.
A running stack is reset live (the emulator's admin endpoint, as its demo administrator); a stopped one
on disk. Keys, certificates, the demo password and the audit logs are kept.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

# What a reset deletes from downstream-api's SQLite database (the demo data starts empty), and the web's sessions.
DOWNSTREAM_DELETES = {
    "DELETE FROM records": "tasks (and their shares)",
    "DELETE FROM provisioned_users": "provisioned users (SCIM)",
}
WEB_DELETES = {"DELETE FROM sessions": "sessions (everyone signs in again)"}


class ResetRefused(Exception):
    """The reset cannot be done here; the message says why and what to do instead."""


@dataclass
class Reset:
    local: Path
    web_port: int
    done: list[str] = field(default_factory=list)

    def run(self) -> list[str]:
        stack = self._running_stack()
        self._check_supported(stack)
        if stack is not None:
            self._reset_emulator_live(stack)
        else:
            path = self.local / "emulator" / "admin-state.json"
            existed = path.exists()
            path.unlink(missing_ok=True)
            self.done.append(
                "identity emulator (stopped): consents, revocations and disabled users forgotten"
                if existed
                else "identity emulator (stopped): nothing to forget"
            )
        self._empty("downstream-api", self.local / "downstream" / "records.db", DOWNSTREAM_DELETES)
        self._empty("web", self.local / "web" / "sessions.sqlite3", WEB_DELETES)
        if stack is None and (self.local / "postgres").exists():
            # Its cluster admits only tokens and is not running: say so rather than claim the tasks are gone.
            self.done.append("PostgreSQL (DB=postgres): not reset; delete .local/postgres to start it afresh")
        return self.done

    def _running_stack(self) -> dict[str, Any] | None:
        """This clone's stack.json if its runner is alive; refuses when another stack holds the web port."""
        stack_file = self.local / "stack.json"
        if stack_file.exists():
            info: dict[str, Any] = json.loads(stack_file.read_text())
            if _alive(int(info.get("runner_pid", 0))):
                return info
        if _answers(f"http://localhost:{self.web_port}/healthz"):
            raise ResetRefused(
                f"a stack answers on port {self.web_port} but was not started from this clone ({self.local} has "
                "no stack.json of a running `make run`): run `make reset` in the clone that started it (with its "
                "PORT_OFFSET), or stop it and run `make reset` here"
            )
        return None

    def _check_supported(self, stack: dict[str, Any] | None) -> None:
        if stack is None:
            return
        if stack.get("database"):
            raise ResetRefused(
                "this stack keeps its tasks in PostgreSQL (DB=postgres), which `make reset` does not empty: "
                "stop it (Ctrl-C), delete .local/postgres (its cluster and tasks), run `make reset`, then "
                "`make run DB=postgres` again"
            )
        if any("devtools.redis_server" in cmd for cmd in _children_cmdlines(int(stack["runner_pid"]))):
            raise ResetRefused(
                "this stack keeps web sessions in Redis (WEB_REPLICAS>1), which `make reset` does not clear: "
                "stop it (Ctrl-C; Redis keeps nothing on disk), run `make reset`, then `make run` again"
            )

    def _reset_emulator_live(self, stack: dict[str, Any]) -> None:
        import httpx

        from devtools.emulator_admin import EmulatorAdmin
        from devtools.token import TokenError

        try:
            answer = EmulatorAdmin(stack).post("reset")
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise ResetRefused(f"the identity emulator refused the reset: {exc}") from None
            raise ResetRefused(
                "the running identity emulator has no reset endpoint: it was started from older code; "
                "stop the stack (Ctrl-C), run `make reset`, then `make run` again"
            ) from None
        except (TokenError, httpx.HTTPError) as exc:
            raise ResetRefused(
                f"the identity emulator at {stack.get('emulator_front_channel')} did not take the reset as this "
                f"clone's demo administrator ({exc}); is it this clone's stack?"
            ) from None
        if Path(answer.get("state_dir", "")).resolve() != (self.local / "emulator").resolve():
            raise ResetRefused(f"the emulator that answered keeps its state in {answer.get('state_dir')}, not here")
        self.done.append(
            "identity emulator (running): consents, revocations, disabled, deleted and renamed users, "
            "sign-in sessions and refresh tokens back to the start"
        )

    def _empty(self, tier: str, path: Path, tables: dict[str, str]) -> None:
        """`tables`: each DELETE statement, and what it deletes in a person's words."""
        if not path.exists():
            self.done.append(f"{tier}: no data yet")
            return
        # A running tier has the file open too: SQLite's own locking (WAL) keeps both consistent.
        with sqlite3.connect(path, timeout=10) as db:
            counts = []
            for statement, what in tables.items():
                deleted = db.execute(statement).rowcount
                counts.append(f"{deleted} {what}")
        db.close()
        self.done.append(f"{tier}: deleted {', '.join(counts)}")


@click.command(
    "reset",
    short_help="restore the local stack's demo state (tasks, consents, users, sessions); keys are kept",
    help="Restore the demo state of this clone's local stack, running or stopped: tasks and shares deleted, "
    "SCIM provisioning undone, the identity emulator's consents, revocations, disabled, deleted and renamed "
    "users and sign-in sessions back to the start, web sessions ended. Keys, certificates, the demo password "
    "and the audit logs are kept. Refuses (exit 1), changing nothing, a stack it cannot reset.",
)
@click.option("--port-offset", type=int, default=0, metavar="N", help="the stack's port offset, as given to `zt run`")
def command(port_offset: int) -> int:
    from devtools.layout import Ports
    from devtools.paths import local_dir

    try:
        done = Reset(local_dir(), Ports().shifted(port_offset).web).run()
    except ResetRefused as exc:
        click.echo(f"zt reset: {exc}", err=True)
        return 1
    click.echo("The demo state is back to its start (keys, certificates and the demo password kept):")
    click.echo("\n".join(f"  {line}" for line in done))
    return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(url: str) -> bool:
    import httpx

    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


def _children_cmdlines(parent: int) -> list[str]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, ValueError, IndexError):
            continue
    return found
