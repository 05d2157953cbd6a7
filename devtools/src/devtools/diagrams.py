"""Sequence diagrams: docs/diagrams/<flow>.mmd (Mermaid) drawn as docs/diagrams/<flow>.svg (`make diagrams`).

The source stays Mermaid, so it reads as text and renders wherever Mermaid does; the SVG is drawn here, with
no browser and no node, so it is the same bytes on every machine and a test holds it to its source. The
subset: `sequenceDiagram`, `title`, `accDescr:`, `autonumber`, `participant`/`actor` ID [as Label],
`A->>B: text`, `A-->>B: text`, `Note over A[,B]|left of A|right of A: text`, `alt`/`else`, `opt`, `loop`
... `end`, `%%` comments and `<br/>` in text. Participants are declared before they are used. Anything
else is an error naming the file and the line, as is text Mermaid would cut short or read as HTML.

    python -m devtools.diagrams [--check]   draws every docs/diagrams/*.mmd; --check: fail if an SVG is stale
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devtools.diagram_svg import render
from devtools.paths import repo_root

# Mermaid reads a name that begins with one of its keywords as the keyword.
KEYWORDS = ("actor", "participant", "create", "destroy", "box", "loop", "rect", "opt", "alt", "else", "par",
            "and", "critical", "option", "break", "end", "link", "properties", "details", "over", "note",
            "activate", "deactivate", "title", "autonumber", "off", "acc")  # fmt: skip
ID = r"([A-Za-z][A-Za-z0-9_]*)"
SYNTAX = {
    "participant": re.compile(rf"^(participant|actor)\s+{ID}(?:\s+as\s+(.+))?$"),
    "message": re.compile(rf"^{ID}\s*(-->>|->>)\s*{ID}\s*:(.*)$"),
    "note": re.compile(rf"^[Nn]ote\s+(over|left of|right of)\s+{ID}(?:\s*,\s*{ID})?\s*:(.*)$"),
    "block": re.compile(r"^(alt|opt|loop)\s+(.+)$"),
    "else": re.compile(r"^else(?:\s+(.*))?$"),
    "end": re.compile(r"^end$"),
    "title": re.compile(r"^(title|accDescr\s*:)\s*(.+)$"),
    "autonumber": re.compile(r"^autonumber$"),
}


class DiagramError(ValueError):
    """The source is outside the subset drawn here; the message names the file and the line."""


@dataclass
class Step:
    kind: str  # message, note, block, else, end
    who: tuple[str, ...] = ()
    text: list[str] = field(default_factory=list)
    how: str = ""  # the arrow, the note's placement, the block's keyword
    number: int = 0  # the step's number, with autonumber


@dataclass
class Diagram:
    title: str = ""
    description: str = ""
    participants: dict[str, tuple[list[str], bool]] = field(default_factory=dict)  # id: (name's lines, actor)
    steps: list[Step] = field(default_factory=list)


def parse(source: str, name: str = "<diagram>") -> Diagram:
    d, open_blocks, numbered = Diagram(), [], False

    def fail(at: int, why: str) -> DiagramError:
        return DiagramError(f"{name}:{at}: {why}")

    def text(at: int, raw: str) -> list[str]:
        if "#" in raw or ";" in raw:
            raise fail(at, "Mermaid ends text at '#' and ';': reword without them")
        parts = [p.strip() for p in re.split(r"<br\s*/?>", raw.strip())]
        if not all(parts) or any("<" in p for p in parts):
            raise fail(at, "empty text, or HTML other than <br/> (Mermaid would drop it)")
        return parts

    def declared(at: int, *ids: str | None) -> tuple[str, ...]:
        for i in ids:
            if i is not None and i not in d.participants:
                raise fail(at, f"participant {i!r} is not declared (declare it first: `participant {i}`)")
        return tuple(i for i in ids if i is not None)

    lines = [(at, s.strip()) for at, s in enumerate(source.splitlines(), 1) if s.strip() and s.strip()[:2] != "%%"]
    if not lines or lines[0][1] != "sequenceDiagram":
        raise fail(lines[0][0] if lines else 1, "the first statement must be `sequenceDiagram`")
    for at, line in lines[1:]:
        kind, m = next(((k, m) for k, rx in SYNTAX.items() if (m := rx.match(line))), ("", None))
        if m is None:
            raise fail(at, f"not in the Mermaid subset drawn here: {line!r}")
        if kind == "participant":
            if m[2] in d.participants or m[2].lower().startswith(KEYWORDS):
                raise fail(at, f"{m[2]!r} is declared twice, or begins with a Mermaid keyword")
            d.participants[m[2]] = (text(at, m[3] or m[2]), m[1] == "actor")
        elif kind == "message":
            number = sum(s.kind == "message" for s in d.steps) + 1 if numbered else 0
            d.steps.append(Step(kind, declared(at, m[1], m[3]), text(at, m[4]), m[2], number))
        elif kind == "note":
            d.steps.append(Step(kind, declared(at, m[2], m[3]), text(at, m[4]), m[1]))
        elif kind == "block":
            open_blocks.append(m[1])
            d.steps.append(Step(kind, text=text(at, m[2]), how=m[1]))
        elif kind == "else":
            if not open_blocks or open_blocks[-1] != "alt":
                raise fail(at, "`else` outside an `alt` block")
            d.steps.append(Step(kind, text=text(at, m[1]) if m[1] else []))
        elif kind == "end":
            if not open_blocks:
                raise fail(at, "`end` without a block to close")
            d.steps.append(Step(kind, how=open_blocks.pop()))
        elif kind == "title":
            setattr(d, "title" if m[1] == "title" else "description", " ".join(text(at, m[2])))
        else:
            numbered = True
    if open_blocks:
        raise fail(lines[-1][0], f"the `{open_blocks[-1]}` block is not closed with `end`")
    if not d.title or not d.participants:
        raise fail(lines[0][0], "a diagram needs a `title` (the SVG's <title>) and participants")
    return d


def build(folder: Path, check: bool = False) -> list[Path]:
    """Draws every <flow>.mmd of `folder` to <flow>.svg; answers the SVGs that changed (with `check`: would)."""
    changed = []
    for source in sorted(folder.glob("*.mmd")):
        shown = source.relative_to(folder.parents[1]) if len(folder.parents) > 1 else source
        svg = render(parse(source.read_text(), str(shown)), source.stem)
        target = source.with_suffix(".svg")
        if not target.is_file() or target.read_text() != svg:
            changed.append(target)
            if not check:
                target.write_text(svg)
    return changed


def main(argv: list[str]) -> int:
    check = "--check" in argv
    try:
        changed = build(repo_root() / "docs" / "diagrams", check)
    except DiagramError as exc:
        print(f"diagrams: {exc}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"{'stale, run `make diagrams`:' if check else 'wrote'} {path.relative_to(repo_root())}")
    return 1 if check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
