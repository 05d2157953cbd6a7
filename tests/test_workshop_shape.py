"""The workshop's shape (docs/workshop/): ordered modules of 10 to 20 minutes that together cover all 27
articles of the tour, each with its goal, steps, what to observe, an exercise and questions, each article
linked to its chapter and its page in the app. What the modules promise is checked in Chromium
(tests/browser/test_workshop.py); their commands are run (tests/e2e/test_workshop_commands.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support.workshop import WORKSHOP, articles, modules, steps

ROOT = Path(__file__).resolve().parent.parent
TOUR = yaml.safe_load((ROOT / "web" / "src" / "web" / "tour.yaml").read_text())
SLUGS = {a["number"]: a["slug"] for a in TOUR["articles"]}
TITLES = {a["number"]: a["title"] for a in TOUR["articles"]}
SECTIONS = ("## Goal", "## Steps", "## What to observe", "## Break it", "## Questions")
MINUTES = re.compile(r"^# Module (\d\d): .+ \((\d+) minutes\)$", re.M)


def test_the_modules_cover_every_article_of_the_tour_once_in_order() -> None:
    found = modules()
    assert [int(p.name[:2]) for p in found] == list(range(1, len(found) + 1)), found
    covered = [n for module in found for n in articles(module)]
    assert sorted(covered) == sorted(SLUGS) == list(range(1, 28)), covered


@pytest.mark.parametrize("module", modules(), ids=lambda p: p.stem)
def test_a_module_has_its_parts_its_time_and_links_for_each_article(module: Path) -> None:
    text = module.read_text()
    for section in SECTIONS:
        assert section in text, f"{module.name}: no {section}"
    heading = MINUTES.search(text)
    assert heading and heading[1] == module.name[:2] and 10 <= int(heading[2]) <= 20, heading
    for number in articles(module):
        slug = SLUGS[number]
        assert f"(../guidance/{slug}.md)" in text and (ROOT / "docs" / "guidance" / f"{slug}.md").exists(), slug
        assert f"`/guide/{slug}`" in text, slug
        learn = f"https://learn.microsoft.com/security/zero-trust/develop/{slug}"
        assert f"| {number} | [{TITLES[number]}]({learn}) |" in text, f"{module.name}: article {number}'s row"
    assert "<details>" in text, f"{module.name}: questions without answers"
    assert any(s.kind == "observe" for s in steps(module)), f"{module.name}: nothing a test can check"


def test_the_readme_lists_every_module_and_the_time_each_takes() -> None:
    readme = (WORKSHOP / "README.md").read_text()
    for module in modules():
        minutes = MINUTES.search(module.read_text())
        assert minutes
        row = next((line for line in readme.splitlines() if f"]({module.name})" in line), None)
        assert row and row.rstrip(" |").endswith(f"{minutes[2]} min"), (module.name, row)
