"""The tour, the workshop chapters, the markers in code and the tests stay in step (article 1).

An article the tour marks done must have its chapter in docs/guidance/, a `# zt: <slug>` marker in
the code the chapter points at, and at least one test marked `@pytest.mark.guidance("<slug>")`. And
every file of the repository the docs and the README name exists, so a move or a rename in the code
can't leave a chapter pointing at nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.guidance("identity-zero-trust-compliance")

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "web" / "src" / "web" / "tour.yaml"
CODE_DIRS = ["zerotrust", "web", "api", "downstream-api", "identity-emulator", "devtools", "infra"]


def _articles() -> list[dict[str, object]]:
    articles: list[dict[str, object]] = yaml.safe_load(TOUR.read_text())["articles"]
    return articles


# Installed environments (devtools/gates/.venv, .local/pythons/...) hold other projects' files: never walked.
NOT_OURS = {".venv", ".local", ".git", "node_modules", "__pycache__", ".terraform"}


def _walk(base: Path) -> list[Path]:
    found = []
    for folder, subfolders, names in os.walk(base):
        subfolders[:] = [s for s in subfolders if s not in NOT_OURS]
        found += [Path(folder) / name for name in names]
    return found


def _files(dirs: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    return [
        p for d in dirs for p in _walk(ROOT / d) if p.suffix in suffixes and "tests" not in p.relative_to(ROOT).parts
    ]


def _test_files() -> list[Path]:
    return [p for p in _walk(ROOT) if p.name.startswith("test_") and p.suffix == ".py"]


def test_the_tour_lists_all_27_articles_once() -> None:
    articles = _articles()
    assert [a["number"] for a in articles] == list(range(1, 28))
    assert len({a["slug"] for a in articles}) == 27
    assert all(a["status"] in ("done", "planned") for a in articles)


@pytest.mark.parametrize("article", [a for a in _articles() if a["status"] == "done"], ids=lambda a: str(a["slug"]))
def test_a_done_article_has_chapter_marker_and_test(article: dict[str, object]) -> None:
    slug = str(article["slug"])
    chapter = ROOT / "docs" / "guidance" / f"{slug}.md"
    assert chapter.exists(), f"article {article['number']} is done but {chapter.relative_to(ROOT)} is missing"
    marker = re.compile(rf"#.*\bzt: {re.escape(slug)}\b")
    marked = [p for p in _files(CODE_DIRS, (".py", ".yaml", ".tf", ".html")) if marker.search(p.read_text())]
    assert marked, f"no '# zt: {slug}' marker in the code"
    assert f"zt: {slug}" in chapter.read_text(), "the chapter must name its marker so readers can grep for it"
    proving = [p for p in _test_files() if f'guidance("{slug}")' in p.read_text()]
    assert proving, f'no test carries @pytest.mark.guidance("{slug}")'
    assert article.get("live"), "a done article says where to see it live"


def test_every_chapter_belongs_to_an_article_of_the_tour() -> None:
    slugs = {a["slug"] for a in _articles()}
    chapters = {p.stem for p in (ROOT / "docs" / "guidance").glob("*.md")} - {"README"}
    assert chapters <= slugs, f"chapters for unknown articles: {chapters - slugs}"


def test_the_guide_index_lists_every_chapter_in_the_guides_order() -> None:
    index = (ROOT / "docs" / "guidance" / "README.md").read_text()
    listed = re.findall(r"^\| (\d+) \| \[[^]]+\]\(([a-z0-9-]+)\.md\)", index, re.M)
    assert listed == [(str(a["number"]), a["slug"]) for a in _articles()]


def test_markers_in_code_name_real_articles() -> None:
    slugs = {str(a["slug"]) for a in _articles()}
    found = {
        m
        for p in _files(CODE_DIRS, (".py",))
        for line in p.read_text().splitlines()
        if "#" in line
        for m in re.findall(r"\bzt: ([a-z0-9-]+)", line.split("#", 1)[1])
    }
    assert found <= slugs, f"markers naming no article: {found - slugs}"


# Repository paths the docs name: a member's source (`api/src/api/main.py`), a test (`tests/...py`, or a
# member's `web/tests/...py`) or the infrastructure (`infra/...`). Not preceded by a path character, so
# `api/src/...` is not read out of `downstream-api/src/...`.
MEMBERS = "zerotrust|web|api|downstream-api|identity-emulator|devtools"
NAMED_PATH = re.compile(
    rf"(?<![\w./-])((?:{MEMBERS})/src/[\w./-]+\.\w+|(?:(?:{MEMBERS})/)?tests/[\w./-]+\.py|infra/[\w./-]*\w)"
)


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_path_the_docs_name_exists() -> None:
    named = [
        (f"{doc.relative_to(ROOT)}:{number}", path)
        for doc in _docs()
        for number, line in enumerate(doc.read_text().splitlines(), 1)
        for path in NAMED_PATH.findall(line)
    ]
    # The pattern still finds what the docs name (a pattern that matched nothing would pass anything).
    assert {"zerotrust/src/zerotrust/tokens.py", "tests/test_guidance.py", "infra/registrations.yaml"} <= {
        path for _, path in named
    }
    missing = [f"{where}: {path}" for where, path in named if not (ROOT / path).exists()]
    assert not missing, "the docs name files that don't exist:\n" + "\n".join(missing)
