"""Commands in the Markdown a person reads, found and run as written (issue 15's convention 4).

A ```sh (or bash, shell, console) block is run by tests/test_doc_commands.py from the repository root as one
bash script (`set -euo pipefail`; nothing carries over to the next block, so each stands alone as a reader
copies it), each file's blocks in order, against a fresh stack of the test's own (the workshop's modules
are one terminal session each instead, `run_session`: tests/e2e/test_workshop_commands.py); a block opened with
```sh no-run: <reason> is shown, not run, and the reason says why. In a ```console block the `$ ` lines run.
Sample output goes in ```text. Every command's first word must exist either way (`problems`).

The commands are written for `make run`'s stack (ports 8000-8444, `.local/`); `stack_env` points them at the
test's stack without touching their text: `ZT_LOCAL_DIR` for everything `zt` does (make token, provision,
scorecard, permissions-report read the stack from there), and a `curl` first on PATH that sends a default
port's request to the test stack's port and reads `.local/` files from the test stack's folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from devtools.paths import repo_root

ROOT = repo_root()
COMMAND_LANGS = frozenset({"sh", "bash", "shell", "console"})
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
NO_RUN = re.compile(r"^no-run(?::\s*(?P<reason>.*))?$")
# Commands a block may start with that are neither a make target nor a path in the repository, each with why.
TOOLS = {
    "curl": "the HTTP client the docs call the stack with",
    "git": "the repository's own history and grep",
    "az": "Azure CLI: deployment (docs/deploy.md)",
    "azd": "Azure Developer CLI: provisions and deploys infra/",
    "terraform": "infra/ is Terraform",
    "docker": "container images (docs/deploy.md)",
    "openssl": "reads certificates",
    "jq": "reads JSON output",
    "python3": "the machine's Python, which runs uv",
    "cd": "shell builtin",
    "cp": "coreutils",
    "cat": "coreutils",
    "rm": "coreutils",
    "echo": "shell builtin",
    "export": "shell builtin",
    "sudo": "the install line devtools/install.sh prints when not root",
    ".": "shell builtin: the workshop's modules read their stack with `. docs/workshop/stack.sh`",
    "stack": "the function docs/workshop/stack.sh defines: one value of the stack's stack.json",
    "if": "shell syntax",
    "then": "shell syntax",
    "fi": "shell syntax",
    "exit": "shell builtin",
    "grep": "coreutils-like: reads output",
    "sed": "coreutils-like: edits a copy of a file",
    "tr": "coreutils",
    "mktemp": "coreutils",
}
SEPARATORS = frozenset({"|", "||", "&&", ";", "&", "(", ")", "|&"})
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# A stack listens on its offset + 8000 to 8444 (devtools.layout); the docs name make run's (offset 0).
STACK_PORTS = range(8000, 8445)


@dataclass(frozen=True)
class Block:
    """One fenced command block: `line` is the opening fence's (1-based); `no_run_reason` is None for a block
    that runs, else the reason given ("" when the author gave none)."""

    path: Path
    line: int
    lang: str
    no_run_reason: str | None
    text: str
    info: str = ""  # the fence's info string after the language

    @property
    def runnable(self) -> bool:
        return self.no_run_reason is None

    @property
    def location(self) -> str:
        where = self.path.relative_to(ROOT) if self.path.is_absolute() and self.path.is_relative_to(ROOT) else self.path
        return f"{where}:{self.line}"

    def script(self) -> str:
        """What bash runs: the block as written; for a console block, its `$ ` lines (the rest is output)."""
        if self.lang != "console":
            return self.text
        lines, going = [], False
        for line in self.text.splitlines():
            if line.startswith("$ "):
                lines.append(line[2:])
            elif going:
                lines.append(line)  # a continuation of the previous command
            else:
                continue
            going = line.endswith("\\")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Fence:
    """Any fenced block, whatever its language (every block is labelled: `text` for output)."""

    line: int
    lang: str
    info: str
    text: str


def fences(path: Path) -> list[Fence]:
    found: list[Fence] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        lang, _, info = opening["info"].strip().partition(" ")
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = FENCE.match(lines[j])
            if (
                closing
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            # A fence indented in a list: its lines lose the same indentation.
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j].lstrip() if indent else lines[j])
            j += 1
        found.append(Fence(i + 1, lang, info.strip(), "\n".join(body) + "\n"))
        i = j + 1
    return found


def blocks(path: Path) -> list[Block]:
    """The command blocks of one Markdown file, in order."""
    found = []
    for fence in fences(path):
        if fence.lang not in COMMAND_LANGS:
            continue
        marker = NO_RUN.match(fence.info)
        reason = (marker["reason"] or "").strip() if marker else None
        found.append(Block(path, fence.line, fence.lang, reason, fence.text, fence.info))
    return found


def markdown_files() -> list[Path]:
    """What a person reads: the README, docs/ (the workshop too) and infra/'s Markdown."""
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").rglob("*.md")),
        *sorted((ROOT / "infra").rglob("*.md")),
    ]


# -- does every command exist ------------------------------------------------------------------------


@cache
def make_targets() -> frozenset[str]:
    makefile = (ROOT / "Makefile").read_text()
    return frozenset(m[1] for m in re.finditer(r"^([A-Za-z][A-Za-z0-9_-]*)\s*:(?!=)", makefile, re.M))


@cache
def zt_commands() -> frozenset[str]:
    """The subcommands `zt --help` lists."""
    from devtools.cli import zt

    return frozenset(zt.commands)


HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>\w+)\1")


def _logical_lines(script: str) -> list[str]:
    """Lines of shell, continuations joined; here-documents (input, not commands) and comments left out."""
    lines, until = [], None
    for line in script.splitlines():
        if until is not None:
            until = None if line.strip() == until else until
            continue
        lines.append(line)
        if heredoc := HEREDOC.search(line):
            until = heredoc["word"]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def simple_commands(script: str) -> list[list[str]]:
    """The words of each simple command (split at pipes, `&&`, `;`, subshells and `$(...)`), assignments
    in front dropped."""
    commands: list[list[str]] = []
    pending = ""
    for line in _logical_lines(script):
        # A quoted argument may span lines (`python3 -c '...'` with a program in it): read on until it closes.
        pending = f"{pending}\n{line}" if pending else line
        try:
            words = list(_lexer(pending))
        except ValueError:
            continue
        pending, current = "", []
        for word in words:
            if word in SEPARATORS:
                commands.append(current)
                current = []
            elif current or not ASSIGNMENT.match(word):
                current.append(word)
        commands.append(current)
    if pending:
        list(_lexer(pending))  # raises: a quote never closed
    return [c for c in commands if c]


def _lexer(text: str) -> shlex.shlex:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    return lexer


def _after_options(words: list[str]) -> list[str]:
    return [w for w in words if not w.startswith("-") and not ASSIGNMENT.match(w)]


def command_problem(words: list[str]) -> str | None:
    """Why this command does not exist as written, or None."""
    first, rest = words[0], words[1:]
    if first == "make":
        targets = [t for t in _after_options(rest) if t != "..."]  # `make provision ...`: more to come
        unknown = [t for t in targets if t not in make_targets()]
        return f"`make {unknown[0]}`: no such target in the Makefile" if unknown else None
    if first == "python3" and rest[:3] == ["-m", "uv", "run"]:
        tool = _after_options(rest[3:])
        if not tool:
            return "`python3 -m uv run` runs nothing"
        if tool[0] == "zt":
            sub = tool[1] if len(tool) > 1 else ""
            return None if sub in zt_commands() else f"`zt {sub}`: not a subcommand of `zt --help`"
        exists = (ROOT / ".venv" / "bin" / tool[0]).exists() or tool[0] == "python"
        return None if exists else f"`{tool[0]}` is not in the project's environment (.venv/bin)"
    if "/" in first:
        return None if (ROOT / first.removeprefix("./")).exists() else f"{first}: no such path in the repository"
    return None if first in TOOLS else f"`{first}`: not a make target, a path or a known tool (doc_commands.TOOLS)"


def problems(block: Block) -> list[str]:
    """What is wrong with a block as the convention goes: a no-run without a reason, an unknown attribute
    in the fence, a command that does not exist."""
    found = []
    if block.no_run_reason == "":
        found.append("`no-run` needs a reason: ```sh no-run: <why it is shown, not run>")
    elif block.info and block.no_run_reason is None:
        found.append(f"unknown fence attribute {block.info!r} (only `no-run: <reason>`)")
    try:
        commands = simple_commands(block.script())
    except ValueError as exc:  # unbalanced quotes
        return [f"{block.location}: {p}" for p in [*found, f"cannot read the commands: {exc}"]]
    found += [p for words in commands if (p := command_problem(words))]
    if block.runnable and not commands:
        found.append("a runnable block with no command")
    return [f"{block.location}: {p}" for p in found]


# Commands known to need no running stack; a file whose runnable blocks hold nothing else runs without one
# (a stack costs seconds of `make test` each). Anything else gets a stack: the safe side.
OFFLINE = frozenset({"git", "terraform", "echo", "cat"})
OFFLINE_ZT = frozenset({"check-registrations", "certificate"})


def needs_stack(runnable: list[Block]) -> bool:
    for block in runnable:
        for words in simple_commands(block.script()):
            zt = words[:5] == ["python3", "-m", "uv", "run", "zt"] and words[5:6]
            if words[0] not in OFFLINE and not (zt and zt[0] in OFFLINE_ZT):
                return True
    return False


# -- running them against a test's stack -------------------------------------------------------------

CURL = """#!{python}
# The docs' curl, pointed at a test's stack: make run's ports (8000-8444) moved by the stack's offset, and
# .local/ files read from the stack's folder. Everything else goes to curl as written.
import os, re, sys
OFFSET, LOCAL = {offset}, {local!r}
def moved(arg):
    arg = re.sub(r"(//(?:localhost|127\\.0\\.0\\.1)):(\\d+)",
                 lambda m: f"{{m[1]}}:{{int(m[2]) + OFFSET}}" if 8000 <= int(m[2]) <= 8444 else m[0], arg)
    return re.sub(r"(^|=)\\.local/", lambda m: m[1] + LOCAL + "/", arg)
os.execv({curl!r}, ["curl", *map(moved, sys.argv[1:])])
"""


def stack_env(local_dir: Path, port_offset: int, bin_dir: Path) -> dict[str, str]:
    """The environment of a person's terminal with `make run` up, for a test's stack in `local_dir` on
    `port_offset`: no test runner's or outer make's variables, not inside the test's virtual environment."""
    real_curl = shutil.which("curl")
    if real_curl is None:
        raise RuntimeError("curl is missing: `sudo apt-get install -y curl`")
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "curl"
    shim.write_text(CURL.format(python=sys.executable, offset=port_offset, local=str(local_dir), curl=real_curl))
    shim.chmod(0o755)
    env = terminal_env(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), env["PATH"]])
    env["ZT_LOCAL_DIR"] = str(local_dir)
    return env


# Set in a test process by fixtures and in-process tools (another stack's CA, a managed identity): a person's
# terminal has none of them, and the commands find their stack's CA in its stack.json.
NOT_IN_A_TERMINAL = frozenset(
    {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET"}
    | {"IMDS_ENDPOINT", "ZT_LOCAL_DIR"}
)


def terminal_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` as a person's terminal has it: no test runner's or outer make's variables, and not inside the
    test's virtual environment, whose python3 has no uv (the docs say `python3 -m uv run`: the machine's)."""
    venv = env.get("VIRTUAL_ENV") or str(Path(sys.executable).parent.parent)
    dropped = ("PYTEST_", "MAKE", "MFLAGS", "VIRTUAL_ENV")
    kept = {k: v for k, v in env.items() if not k.startswith(dropped) and k not in NOT_IN_A_TERMINAL}
    kept["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(venv))
    return kept


def run_block(
    block: Block, env: dict[str, str], cwd: Path = ROOT, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The block as one bash script (`set -euo pipefail`), output captured."""
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block.script()],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_session(found: list[Block], env: Mapping[str, str], cwd: Path = ROOT, timeout: float = 600) -> str:
    """Blocks as one terminal session (the workshop's modules: a variable set in one block is there in the
    next), one bash script that announces each block on stderr; its stdout, or AssertionError with the output."""
    parts = ["set -euo pipefail"]
    for block in found:
        parts += [f"echo '>>> {block.location}' >&2", block.script()]
    done = subprocess.run(
        ["bash", "-c", "\n".join(parts) + "\n"],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, (
        f"{found[0].location if found else 'no block'}: the commands exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )
    return done.stdout
