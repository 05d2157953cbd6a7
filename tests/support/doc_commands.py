"""Commands in Markdown, as convention 4 of the docs has them: a ```sh block is run (from the repository's root, one
bash script per file, `set -euo pipefail`, blocks in order, so a variable set in one block is there in the next); a
```sh no-run: <reason> block is shown, not run, but the commands it names must exist; ```text is sample output.

    for block in blocks(path): ...            # every fenced block of a file, in order
    run_block(block, env)                     # one block, alone
    run_blocks(runnable(blocks(path)), env)   # a file's runnable blocks as one script, as the docs promise
    missing(block)                            # what a block names that does not exist (make targets, zt commands)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from devtools.paths import repo_root

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)(?P<info>.*)$")
NO_RUN = re.compile(r"^sh\s+no-run:\s*(?P<reason>\S.*)$")
MAKE_TARGET = re.compile(r"(?:^|[\s;&|(])make\s+(?:-\w+\s+)*(?P<target>[a-z][\w-]*)")
# Set in a test process by fixtures and in-process tools (another stack's CA, a managed identity): a person's
# terminal has none of them, and the commands find their stack's CA in stack.json.
NOT_IN_A_TERMINAL = {
    "VIRTUAL_ENV",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
}
ZT_COMMAND = re.compile(r"python3 -m uv run zt\s+(?P<command>[a-z][\w-]*)")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    info: str  # the fence's info string: "sh", "sh no-run: <reason>", "text", ...
    code: str

    @property
    def runs(self) -> bool:
        return self.info == "sh"

    @property
    def no_run_reason(self) -> str | None:
        """The reason of a ```sh no-run: block; None for any other block."""
        match = NO_RUN.match(self.info)
        return match["reason"].strip() if match else None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


class BlockFailed(AssertionError):
    """A block (or a file's script) exited non-zero; the message carries its output."""


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order (indented fences, as in list items, too)."""
    found: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent, body = opening["fence"], len(opening["indent"]), []
        start, i = i + 1, i + 1
        while i < len(lines) and not (lines[i].strip().startswith(fence) and lines[i].strip() == fence[0] * len(fence)):
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        found.append(Block(path, start, opening["info"].strip(), "\n".join(body) + "\n"))
        i += 1
    return found


def runnable(found: Iterable[Block]) -> list[Block]:
    """The ```sh blocks (no-run ones left out)."""
    return [b for b in found if b.runs]


def script(found: Iterable[Block]) -> str:
    """One bash script of blocks, each announced on stderr so a failure says which block it was in."""
    parts = ["set -euo pipefail"]
    for block in found:
        parts += [f"echo '>>> {block.where}' >&2", block.code]
    return "\n".join(parts) + "\n"


def terminal_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` as a person's terminal has it: not inside this test run's virtual environment, whose python3 has no
    uv (the docs say `python3 -m uv run ...`, meaning the machine's Python)."""
    venv = env.get("VIRTUAL_ENV") or str(Path(sys.executable).parent.parent)
    path = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(venv))
    kept = {k: v for k, v in env.items() if k not in NOT_IN_A_TERMINAL and not k.startswith("PYTEST_")}
    return {**kept, "PATH": path}


def run_block(block: Block, env: Mapping[str, str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one block alone; raises BlockFailed with its output unless it exits 0."""
    return run_blocks([block], env, timeout=timeout)


def run_blocks(
    found: list[Block], env: Mapping[str, str], *, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run blocks (normally all of one file's runnable ones) as one bash script from the repository's root."""
    done = subprocess.run(
        ["/bin/bash", "-c", script(found)],
        cwd=cwd or repo_root(),
        env=terminal_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        where = found[0].path if found else "no block"
        raise BlockFailed(
            f"{where}: the commands exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n"
            f"--- stderr\n{done.stderr[-4000:]}"
        )
    return done


def missing(block: Block, root: Path | None = None) -> list[str]:
    """What a block names that does not exist: make targets absent from the Makefile, `python3 -m uv run zt`
    subcommands zt does not have. A no-run block is shown, not run: this is what keeps it true."""
    root = root or repo_root()
    targets = set(re.findall(r"^([a-z][\w-]*):", (root / "Makefile").read_text(), re.M))
    from devtools.cli import zt

    gone = [f"make {m['target']}" for m in MAKE_TARGET.finditer(block.code) if m["target"] not in targets]
    gone += [f"zt {m['command']}" for m in ZT_COMMAND.finditer(block.code) if m["command"] not in zt.commands]
    return gone
