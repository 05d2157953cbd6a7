"""The tour, the workshop chapters, the markers in code and the tests stay in step (article 1).

An article the tour marks done must have its chapter in docs/guidance/, a `# zt: <slug>` marker in
the code the chapter points at, and at least one test marked `@pytest.mark.guidance("<slug>")`.
"""

from __future__ import annotations

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


def _files(dirs: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    return [
        p
        for d in dirs
        for p in (ROOT / d).rglob("*")
        if p.suffix in suffixes and p.is_file() and "tests" not in p.relative_to(ROOT).parts
    ]


def _test_files() -> list[Path]:
    return [p for p in ROOT.rglob("test_*.py") if ".venv" not in p.parts]


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
