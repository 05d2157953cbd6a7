"""The code the chapters quote is the code that runs (article 1): every `<!-- quote: <path> <name> -->` block in
the docs equals its source region (`# region quote: <name>` ... `# endregion`), dedented, and every one of the
27 chapters quotes code that exists. `make quotes` rewrites the blocks from the source."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from devtools.quotes import QuoteError, documents, main, problems, quotes, regions, rewrite

pytestmark = pytest.mark.guidance("identity-zero-trust-compliance")

ROOT = Path(__file__).resolve().parents[1]
SLUGS = [str(a["slug"]) for a in yaml.safe_load((ROOT / "web/src/web/tour.yaml").read_text())["articles"]]
START_TEXT = "region quote: "
SOURCE = """def check(token):
    # region quote: the-check
    if not token:
        raise ValueError("no token")
    return token
    # endregion
"""


def test_every_quoted_block_equals_its_source_region() -> None:
    found = [p for doc in documents(ROOT) for p in problems(ROOT, doc)]
    assert not found, "out of step (run `make quotes`):\n" + "\n".join(found)


@pytest.mark.parametrize("slug", SLUGS)
def test_every_chapter_quotes_code_that_exists(slug: str) -> None:
    chapter = ROOT / "docs" / "guidance" / f"{slug}.md"
    quoted = quotes(chapter.read_text())
    assert quoted, f"{chapter.relative_to(ROOT)} quotes no code (<!-- quote: <path> <name> --> before a block)"
    sizes = [len(regions((ROOT / q.path).read_text(), q.path)[q.name].splitlines()) for q in quoted]
    # A code unit a reader takes in at once: one of 5-30 lines at least, none longer than 40.
    assert any(5 <= size <= 30 for size in sizes) and max(sizes) <= 40, [
        (q.name, n) for q, n in zip(quoted, sizes, strict=True)
    ]


def _sources() -> list[Path]:
    """The files that carry quote regions: the members' code, the infrastructure, the pipeline's files."""
    files = [*ROOT.glob("*/src/**/*.py"), *(ROOT / "infra").rglob("*.tf"), *(ROOT / ".github").rglob("*.yml")]
    files += [ROOT / ".pre-commit-config.yaml", *ROOT.glob("*/src/**/*.html"), *(ROOT / "infra").glob("*.yaml")]
    return [p for p in files if ".terraform" not in p.parts and START_TEXT in p.read_text()]


def test_every_region_in_the_code_is_closed_and_quoted() -> None:
    sources = _sources()
    assert len(sources) >= 10, "the code carries quote regions"
    quoted = {(q.path, q.name) for doc in documents(ROOT) for q in quotes(doc.read_text())}
    for source in sources:
        where = source.relative_to(ROOT).as_posix()
        named = regions(source.read_text(), where)  # raises on a region left open, nested or named twice
        unquoted = [name for name in named if (where, name) not in quoted]
        assert not unquoted, f"{where}: regions no doc quotes: {unquoted}"


def _repo(tmp_path: Path, block: str) -> tuple[Path, Path]:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "check.py").write_text(SOURCE)
    doc = tmp_path / "chapter.md"
    doc.write_text(f"# A chapter\n\n<!-- quote: src/check.py the-check -->\n{block}\nAfter.\n")
    return tmp_path, doc


def test_a_block_out_of_step_is_found_and_make_quotes_puts_it_back(tmp_path: Path) -> None:
    root, doc = _repo(tmp_path, '```python\nif not token:\n    raise ValueError("no token!")\n```')
    assert problems(root, doc) == ["chapter.md:3: the block differs from src/check.py region 'the-check'"]
    doc.write_text(rewrite(root, doc.read_text()))
    assert problems(root, doc) == []
    assert '```python\nif not token:\n    raise ValueError("no token")\nreturn token\n```\nAfter.' in doc.read_text()


def test_a_marker_without_a_block_gets_one(tmp_path: Path) -> None:
    root, doc = _repo(tmp_path, "")
    assert problems(root, doc) == ["chapter.md:3: no fenced block right after the quote marker"]
    assert "```python\nif not token:" in rewrite(root, doc.read_text())


@pytest.mark.parametrize(
    ("marker", "says"),
    [
        ("src/check.py no-such-region", "has no such region"),
        ("src/missing.py the-check", "not a file of the repository"),
        ("../outside.py the-check", "not a file of the repository"),
        ("/etc/passwd the-check", "not a file of the repository"),
    ],
)
def test_a_quote_of_nothing_is_an_error(tmp_path: Path, marker: str, says: str) -> None:
    (tmp_path / "outside.py").write_text(SOURCE)
    root = tmp_path / "repo"
    root.mkdir()
    root, doc = _repo(root, "```python\nx\n```")
    doc.write_text(doc.read_text().replace("src/check.py the-check", marker))
    [problem] = problems(root, doc)
    assert says in problem
    with pytest.raises(QuoteError, match=says):
        rewrite(root, doc.read_text())


@pytest.mark.parametrize(
    "source",
    [
        "# region quote: a\nx = 1\n",
        "# region quote: a\n# region quote: b\n# endregion\n# endregion\n",
        "# region quote: a\n# endregion\n# region quote: a\n# endregion\n",
    ],
)
def test_a_region_left_open_nested_or_named_twice_is_refused(source: str) -> None:
    with pytest.raises(QuoteError):
        regions(source, "x.py")


def test_make_quotes_check_passes_on_the_repository_and_fails_on_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check"]) == 0, capsys.readouterr().err
    root, _ = _repo(tmp_path, "```python\nstale\n```")
    (root / "README.md").write_text("# Readme\n")
    monkeypatch.setattr("devtools.quotes.repo_root", lambda: root)
    monkeypatch.setattr("devtools.quotes.documents", lambda r: [r / "chapter.md"])
    assert main(["--check"]) == 1
    assert "differs from src/check.py" in capsys.readouterr().err
    assert main([]) == 0  # `make quotes`: rewritten ...
    assert main(["--check"]) == 0  # ... and in step
