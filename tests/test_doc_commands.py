"""No command in the README or the docs fails as written (issue 15): every command block either runs here,
against a fresh stack of this test's own, or says why not (```sh no-run: <reason>); every command names
something that exists (a make target, a path, a `zt` subcommand, a known tool), in blocks and inline alike."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.support.doc_commands import (
    COMMAND_LANGS,
    ROOT,
    Block,
    blocks,
    command_problem,
    fences,
    markdown_files,
    needs_stack,
    problems,
    run_block,
    simple_commands,
    stack_env,
)
from tests.support.launch import MAKE_RUN_STACK_OFFSET, start_stack

FILES = markdown_files()
# Languages a fenced block may name; `text` is for output and pictures drawn in characters.
LANGS = COMMAND_LANGS | {"text", "python", "json", "sql", "yaml", "hcl", "toml", "mermaid", "ini", "http", "jinja"}
# The make run test's block of ports: its stack is gone when it ends, as this test's is.
OFFSET = MAKE_RUN_STACK_OFFSET
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_every_command_block_runs_or_says_why_not_and_names_commands_that_exist() -> None:
    found = [problem for path in FILES for block in blocks(path) for problem in problems(block)]
    assert not found, "\n".join(found)


def test_every_fenced_block_names_its_language_so_no_command_hides_in_an_unlabelled_one() -> None:
    unlabelled = [
        f"{_name(path)}:{fence.line}: ```{fence.lang}"
        for path in FILES
        for fence in fences(path)
        if fence.lang not in LANGS
    ]
    assert not unlabelled, "label each block (```sh for commands, ```text for output):\n" + "\n".join(unlabelled)


def _inline_commands(text: str) -> list[str]:
    outside = re.sub(r"^(\s*)(```|~~~).*?^\1\2\s*$", "", text, flags=re.M | re.S)
    return [
        span for span in INLINE.findall(outside) if re.match(r"([A-Z_]+=\S+ )*(make|python3 -m uv run) ", span + " ")
    ]


def test_every_inline_make_or_zt_command_exists() -> None:
    found = [
        f"{_name(path)}: `{span}`: {problem}"
        for path in FILES
        for span in _inline_commands(path.read_text())
        # A span is one command; the rest may be prose (`--app web|api|daemon`).
        for words in simple_commands(span)[:1]
        if (problem := command_problem(words))
    ]
    assert not found, "\n".join(found)


SAMPLE = """\
# A chapter

```sh
TOKEN=$(make -s token USER=alice@contoso.test)
curl --cacert .local/tls/ca-bundle.pem -H "Authorization: Bearer $TOKEN" https://localhost:8001/me \\
  | python3 -m uv run zt nonesuch
```

1. In a list:

   ```sh no-run: starts the stack; the test starts its own
   make run && make frobnicate
   ```

```bash no-run:
devtools/install.sh && tools/missing.sh
```

```console
$ python3 -m uv run pytest -q
3 passed
$ wget https://example.com
```

```sh norun
git status
```

```text
make nothing-checked-here
```
"""


def test_the_checks_find_what_is_wrong_with_a_block(tmp_path: Path) -> None:
    doc = tmp_path / "chapter.md"
    doc.write_text(SAMPLE)
    found = blocks(doc)
    assert [(b.line, b.lang, b.no_run_reason) for b in found] == [
        (3, "sh", None),
        (11, "sh", "starts the stack; the test starts its own"),
        (15, "bash", ""),
        (19, "console", None),
        (25, "sh", None),
    ]
    assert found[1].text == "make run && make frobnicate\n"  # the list's indentation taken off
    assert found[3].script() == "python3 -m uv run pytest -q\nwget https://example.com\n"
    said = [p.removeprefix(f"{doc}:") for b in found for p in problems(b)]
    assert said == [
        "3: `zt nonesuch`: not a subcommand of `zt --help`",
        "11: `make frobnicate`: no such target in the Makefile",
        "15: `no-run` needs a reason: ```sh no-run: <why it is shown, not run>",
        "15: tools/missing.sh: no such path in the repository",
        "19: `wget`: not a make target, a path or a known tool (doc_commands.TOOLS)",
        "25: unknown fence attribute 'norun' (only `no-run: <reason>`)",
    ]
    assert _inline_commands("Run `make frobnicate X=1` or `python3 -m uv run zt run`, not `git log`.") == [
        "make frobnicate X=1",
        "python3 -m uv run zt run",
    ]


def _runnable(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.runnable]


@pytest.mark.live
# The workshop's modules are terminal sessions, run as such by tests/e2e/test_workshop_commands.py.
@pytest.mark.parametrize("path", [p for p in FILES if _runnable(p) and "workshop" not in p.parts], ids=_name)
def test_each_files_commands_run_as_written_against_a_fresh_stack(path: Path, tmp_path: Path) -> None:
    """One stack per file, as `make run` starts it (none for commands that need none, e.g. `git grep`); the
    blocks in order, each one bash script that exits 0."""
    local = tmp_path / "local"
    local.mkdir()
    runnable = _runnable(path)
    stack = start_stack(local, OFFSET) if needs_stack(runnable) else None
    try:
        env = stack_env(local, OFFSET, tmp_path / "bin")
        for block in runnable:
            result = run_block(block, env)
            assert result.returncode == 0, (
                f"{block.location} failed (exit {result.returncode}) as written:\n{block.text}"
                f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
            )
    finally:
        if stack is not None:
            stack.process.send_signal(signal.SIGTERM)
            stack.process.wait(30)


def test_only_git_terraform_and_offline_zt_commands_run_without_a_stack(tmp_path: Path) -> None:
    def block(text: str) -> Block:
        return Block(tmp_path / "x.md", 1, "sh", None, text)

    assert not needs_stack([block('git grep -n "zt: app-registration"\nterraform fmt -check -recursive infra\n')])
    assert not needs_stack([block("python3 -m uv run zt check-registrations\n")])
    assert needs_stack([block("git status\n"), block("make -s token\n")])
    assert needs_stack([block("python3 -m uv run zt scorecard\n")])
    assert needs_stack([block("curl -s https://localhost:8001/openapi.json | python3 -c 'print(1)'\n")])
