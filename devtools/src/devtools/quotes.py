"""Code quoted in the docs, kept in step with the source (`make quotes`; tests/test_quotes.py checks it).

In the source, a region:      # region quote: <name>  ...  # endregion
(in a Jinja template:          {# region quote: <name> #}  ...  {# endregion #})
In Markdown, the marker and the fenced block right after it:

    <!-- quote: <path from the repository root> <name> -->
    ```python
    ...the region's lines, dedented...
    ```

    python -m devtools.quotes          rewrite every quoted block from its region; fail on a quote of nothing
    python -m devtools.quotes --check  change nothing; fail if a block differs from its region
"""

# zt: identity-zero-trust-compliance

from __future__ import annotations

import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from devtools.paths import repo_root

START = re.compile(r"^\s*(?:#|\{#-?)\s*region quote: ([a-z0-9-]+)\s*(?:-?#\})?\s*$")
END = re.compile(r"^\s*(?:#|\{#-?)\s*endregion\s*(?:-?#\})?\s*$")
MARKER = re.compile(r"^<!-- quote: (\S+) ([a-z0-9-]+) -->\s*$")
FENCE = re.compile(r"^(```+)(.*)$")
LANGUAGES = {".py": "python", ".yaml": "yaml", ".yml": "yaml", ".tf": "hcl", ".html": "jinja", ".toml": "toml"}


class QuoteError(ValueError):
    """A quote that names nothing, or a region that is not closed."""


@dataclass(frozen=True)
class Quote:
    line: int  # the marker's line, from 1
    path: str
    name: str
    block: tuple[int, int] | None  # the fenced block's lines (opening fence, closing fence), 0-based
    body: str | None  # what the block holds now


def regions(text: str, where: str = "") -> dict[str, str]:
    """Each named region of a source file, its lines dedented, without the marker lines."""
    found: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        start, end = START.match(line), END.match(line)
        if start:
            if name is not None:
                raise QuoteError(f"{where}:{number}: region {start.group(1)!r} opens inside {name!r}")
            if start.group(1) in found:
                raise QuoteError(f"{where}:{number}: a second region named {start.group(1)!r}")
            name, body = start.group(1), []
        elif end and name is not None:
            found[name] = textwrap.dedent("\n".join(body)).strip("\n")
            name = None
        elif name is not None:
            body.append(line)
    if name is not None:
        raise QuoteError(f"{where}: region {name!r} is never closed (# endregion)")
    return found


def quotes(markdown: str) -> list[Quote]:
    lines = markdown.splitlines()
    found = []
    for i, line in enumerate(lines):
        marker = MARKER.match(line)
        if not marker:
            continue
        block, body = None, None
        opening = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if opening:
            close = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == opening.group(1)), None)
            if close is not None:
                block, body = (i + 1, close), "\n".join(lines[i + 2 : close])
        found.append(Quote(i + 1, marker.group(1), marker.group(2), block, body))
    return found


def source_region(root: Path, quote: Quote) -> str:
    path = (root / quote.path).resolve()
    if ".." in Path(quote.path).parts or not path.is_relative_to(root.resolve()) or not path.is_file():
        raise QuoteError(f"quotes {quote.path}, which is not a file of the repository")
    found = regions(path.read_text(encoding="utf-8"), quote.path)
    if quote.name not in found:
        raise QuoteError(f"quotes region {quote.name!r} of {quote.path}, which has no such region")
    return found[quote.name]


def problems(root: Path, doc: Path) -> list[str]:
    """What is out of step in one Markdown file (empty: every quoted block equals its region)."""
    where = doc.relative_to(root)
    out = []
    for quote in quotes(doc.read_text(encoding="utf-8")):
        try:
            region = source_region(root, quote)
        except QuoteError as e:
            out.append(f"{where}:{quote.line}: {e}")
            continue
        if quote.body is None:
            out.append(f"{where}:{quote.line}: no fenced block right after the quote marker")
        elif quote.body != region:
            out.append(f"{where}:{quote.line}: the block differs from {quote.path} region {quote.name!r}")
    return out


def rewrite(root: Path, markdown: str) -> str:
    """The Markdown with every quoted block replaced by its region (a block added where there was none)."""
    lines = markdown.splitlines()
    for quote in reversed(quotes(markdown)):
        region = source_region(root, quote).splitlines()
        language = LANGUAGES.get(Path(quote.path).suffix, "text")
        if quote.block is None:
            lines[quote.line : quote.line] = [f"```{language}", *region, "```"]
        else:
            first, last = quote.block
            lines[first + 1 : last] = region
    return "\n".join(lines) + ("\n" if markdown.endswith("\n") else "")


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def main(argv: list[str]) -> int:
    root = repo_root()
    check = "--check" in argv
    failed = False
    for doc in documents(root):
        text = doc.read_text(encoding="utf-8")
        if check:
            for problem in problems(root, doc):
                print(problem, file=sys.stderr)
                failed = True
            continue
        try:
            new = rewrite(root, text)
        except QuoteError as e:
            print(f"{doc.relative_to(root)}: {e}", file=sys.stderr)
            failed = True
            continue
        if new != text:
            doc.write_text(new, encoding="utf-8")
            print(f"rewrote {doc.relative_to(root)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
