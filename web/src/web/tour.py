"""The tour of the guidance: the 27 articles as data (tour.yaml), read once and checked."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

TOUR_FILE = Path(__file__).with_name("tour.yaml")
LEARN = "https://learn.microsoft.com/security/zero-trust/develop/"
# Where the app renders the chapters (routes/guide.py).
GUIDE = "/guide"

PRINCIPLES = {
    "V": (
        "Verify explicitly",
        "Every request proves who is calling, with a token minted for that hop; "
        "nothing is trusted for where it comes from.",
    ),
    "L": (
        "Use least privilege",
        "Each caller gets only the scopes and roles it needs, checked on every route.",
    ),
    "B": (
        "Assume breach",
        "Limit what a stolen token, session or key can do: short lives, narrow audiences, "
        "nothing secret in the browser.",
    ),
}


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str


class Article(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    slug: str
    section: str
    title: str
    principles: str
    status: Literal["done", "planned"]
    shows: str
    live: str | None
    pages: tuple[str, ...] = ()

    @field_validator("principles")
    @classmethod
    def _known_principles(cls, value: str) -> str:
        if not value or set(value) - set(PRINCIPLES):
            raise ValueError(f"principles must be letters of {''.join(PRINCIPLES)}")
        return value

    @field_validator("live")
    @classmethod
    def _own_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or value.startswith("//")):
            raise ValueError("live must be a path of this app")
        return value

    @field_validator("pages")
    @classmethod
    def _own_pages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not p.startswith("/") or p.startswith("//") or "?" in p or "#" in p for p in value):
            raise ValueError("pages must be route paths of this app (no query, no fragment)")
        if len(set(value)) != len(value):
            raise ValueError("pages must not repeat a path")
        return value

    @property
    def docs(self) -> str:
        """The workshop chapter for this article."""
        return f"docs/guidance/{self.slug}.md"

    @property
    def chapter(self) -> str:
        """The chapter, rendered in this app."""
        return f"{GUIDE}/{self.slug}"

    @property
    def learn(self) -> str:
        """Microsoft's article on Microsoft Learn."""
        return LEARN + self.slug

    @property
    def marker(self) -> str:
        """The grep-able marker on the code that implements it."""
        return f"# zt: {self.slug}"


class Tour(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sections: tuple[Section, ...]
    articles: tuple[Article, ...]

    # region quote: tour-consistent
    @model_validator(mode="after")
    def _consistent(self) -> Tour:
        if [a.number for a in self.articles] != list(range(1, len(self.articles) + 1)):
            raise ValueError("articles must be numbered 1..n in order")
        if len({a.slug for a in self.articles}) != len(self.articles):
            raise ValueError("article slugs must be unique")
        known = {s.id for s in self.sections}
        if any(a.section not in known for a in self.articles):
            raise ValueError("every article's section must be listed under sections")
        return self

    # endregion

    def in_section(self, section: str) -> list[Article]:
        return [a for a in self.articles if a.section == section]

    def by_slug(self, slug: str) -> Article | None:
        return next((a for a in self.articles if a.slug == slug), None)

    def on_page(self, route: str) -> list[Article]:
        """The articles a page demonstrates, by the path its route declares (/tasks/{task_id}/share)."""
        return [a for a in self.articles if route in a.pages]

    @property
    def done(self) -> list[Article]:
        return [a for a in self.articles if a.status == "done"]


@functools.cache
def load_tour(path: Path = TOUR_FILE) -> Tour:
    return Tour.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
