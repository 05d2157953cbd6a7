"""The workshop's modules (docs/workshop/NN-*.md) as tests read them: the articles each covers, and the
machine-checkable lines at its end that say what a person will see (docs/workshop/README.md, "For whoever
changes a module"):

    <!-- observe: USER PATH [click "BUTTON"] | TEXT -->
    <!-- do: ACTION [USER] [| ARGUMENT] -->
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from devtools.paths import repo_root

WORKSHOP = repo_root() / "docs" / "workshop"
LINE = re.compile(r"<!--\s*(?P<kind>observe|do):\s*(?P<body>.*?)\s*-->")
OBSERVE = re.compile(r'^(?P<user>\S+)\s+(?P<path>\S+)(?:\s+click\s+"(?P<click>[^"]+)")?\s*\|\s*(?P<text>.+)$')
DO = re.compile(r"^(?P<action>[a-z-]+)(?:\s+(?P<user>[^\s|]+))?\s*(?:\|\s*(?P<argument>.+))?$")
ARTICLE_ROW = re.compile(r"^\|\s*(?P<number>\d+)\s*\|", re.M)


@dataclass(frozen=True)
class Step:
    """One line of a module's checklist: `observe` (go to `path` as `user`, see `text`) or `do` (an action)."""

    module: str
    kind: str
    user: str
    path: str = ""
    click: str | None = None
    text: str = ""
    action: str = ""
    argument: str = ""

    def __str__(self) -> str:
        if self.kind == "observe":
            clicked = f' click "{self.click}"' if self.click else ""
            return f"{self.module}: observe {self.user} {self.path}{clicked} | {self.text}"
        return f"{self.module}: do {self.action} {self.user} | {self.argument}"


def modules(folder: Path = WORKSHOP) -> list[Path]:
    """The modules, in order (01-..., 02-...)."""
    return sorted(p for p in folder.glob("[0-9][0-9]-*.md"))


def articles(module: Path) -> list[int]:
    """The article numbers a module's "Articles covered" table lists."""
    return [int(m["number"]) for m in ARTICLE_ROW.finditer(module.read_text())]


def steps(module: Path) -> list[Step]:
    found = []
    for match in LINE.finditer(module.read_text()):
        body = match["body"]
        if match["kind"] == "observe":
            seen = OBSERVE.match(body)
            if not seen:
                raise ValueError(f'{module.name}: not USER PATH [click "BUTTON"] | TEXT: {body!r}')
            found.append(Step(module.stem, "observe", seen["user"], seen["path"], seen["click"], seen["text"].strip()))
        else:
            done = DO.match(body)
            if not done:
                raise ValueError(f"{module.name}: not ACTION [USER] [| ARGUMENT]: {body!r}")
            found.append(
                Step(
                    module.stem,
                    "do",
                    done["user"] or "",
                    action=done["action"],
                    argument=(done["argument"] or "").strip(),
                )
            )
    return found
