"""Every command of the workshop runs as written: the ```sh blocks of docs/workshop/README.md and of each module,
in order, each file as one bash script (`set -euo pipefail`) from the repository's root, against one fresh stack
started as `make run` starts it (tests/support/doc_commands.py). The commands find the stack through the
stack.json it writes (docs/workshop/stack.sh), here in the stack's own folder (ZT_LOCAL_DIR)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.doc_commands import blocks, run_session, stack_env
from tests.support.launch import MAKE_RUN_STACK_OFFSET, start_stack
from tests.support.workshop import WORKSHOP, modules

pytestmark = pytest.mark.live


def test_every_workshop_command_runs_as_written_on_a_fresh_stack(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    stack = start_stack(tmp_path / "local", MAKE_RUN_STACK_OFFSET)
    env = stack_env(stack.local_dir, MAKE_RUN_STACK_OFFSET, tmp_path / "bin")
    ran = {}
    try:
        for doc in [WORKSHOP / "README.md", *modules()]:
            found = [b for b in blocks(doc) if b.runnable]
            if found:
                out = run_session(found, env)
                ran[doc.name] = len(found)
                if doc in modules():
                    # Each module hands the next one the demo state it started from.
                    assert "demo state is back to its start" in out, f"{doc.name} ends without make reset"
    finally:
        stack.process.send_signal(signal.SIGTERM)
        stack.process.wait(30)
    assert set(ran) >= {m.name for m in modules()}, ran
