"""The workshop's Markdown as pages of this app: docs/guidance/<slug>.md, docs/workshop/<name>.md and the
diagrams in docs/diagrams/, read from the docs directory (WEB_DOCS_DIR).

Raw HTML in the Markdown is never passed through (markdown-it's `html` option off): a chapter is text the
app shows, not markup it trusts. Links are rewritten so the chapters, modules and diagrams stay in the
app; a link to another file of the repository is shown as its path in code, since the app serves no
repository files. A block quoted from the source (`<!-- quote: <path> <name> -->`) says its path.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

from .tour import GUIDE

# A name that can only be a file in its own folder: no dot, no slash, nothing to decode.
NAME = re.compile(r"[a-z0-9-]+")
# The quote marker a chapter puts before a fenced block (devtools/quotes.py keeps the block in step).
QUOTE = re.compile(r"^<!-- quote: (\S+) ([a-z0-9-]+) -->\s*$")
COMMENT = re.compile(r"^<!--.*-->\s*$")
FENCE = re.compile(r"^(```+|~~~+)")


@dataclass(frozen=True)
class Chapter:
    title: str
    html: Markup
    links: tuple[str, ...]  # the in-app pages it links to (/guide/...), in order


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def _lift_markers(text: str) -> str:
    """Whole-line HTML comments out of the text (they would show as text with raw HTML off); a quote marker
    goes into the next fence's info string instead, for the renderer to caption."""
    out: list[str] = []
    quote: str | None = None
    fence: str | None = None
    for line in text.splitlines():
        opened = FENCE.match(line)
        if fence is not None:
            if opened and line.strip() == fence:
                fence = None
            out.append(line)
            continue
        marker = QUOTE.match(line)
        if marker:
            quote = f"{marker.group(1)}#{marker.group(2)}"
            continue
        if COMMENT.match(line):
            continue
        if opened:
            fence = opened.group(1)
            if quote:
                line = f"{line} quote={quote}"
        quote = None
        out.append(line)
    return "\n".join(out) + "\n"


def in_app(href: str, here: str, slugs: Iterable[str]) -> str | None:
    """The app's URL for a link in the Markdown file `here` (a path under docs/), or None where it leads to a
    repository file the app does not serve. External and in-page links come back as they are."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith(("#", "/")):
        return href
    target = posixpath.normpath(posixpath.join(posixpath.dirname(here), parts.path))
    anchor = f"#{parts.fragment}" if parts.fragment else ""
    folder, _, file = target.rpartition("/")
    stem, _, suffix = file.rpartition(".")
    if folder == "guidance" and suffix == "md" and (stem == "README" or stem in set(slugs)):
        return (GUIDE if stem == "README" else f"{GUIDE}/{stem}") + anchor
    if folder == "workshop" and suffix == "md" and (stem == "README" or NAME.fullmatch(stem)):
        return (f"{GUIDE}/workshop" if stem == "README" else f"{GUIDE}/workshop/{stem}") + anchor
    if folder == "diagrams" and suffix == "svg" and NAME.fullmatch(stem):
        return f"{GUIDE}/diagrams/{stem}.svg"
    return None


def repository_path(href: str, here: str) -> str:
    """The repository-relative path a relative link in docs/<here> names."""
    return posixpath.normpath(posixpath.join("docs", posixpath.dirname(here), urlsplit(href).path))


def anchor(heading: str) -> str:
    """A heading's id as GitHub makes it, so a link to `chapter.md#see-it-live` lands in the app too."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _rewrite(tokens: list[Token], here: str, slugs: tuple[str, ...], links: list[str]) -> None:
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            token.attrSet("id", anchor(tokens[i + 1].content))
        if token.children:
            _rewrite_inline(token.children, here, slugs, links)


def _rewrite_inline(children: list[Token], here: str, slugs: tuple[str, ...], links: list[str]) -> None:
    for i, token in enumerate(children):
        if token.type == "image":
            token.attrSet("src", in_app(str(token.attrGet("src") or ""), here, slugs) or "")
        elif token.type == "link_open":
            href = str(token.attrGet("href") or "")
            target = in_app(href, here, slugs)
            if target is not None:
                token.attrSet("href", target)
                if target.startswith(GUIDE):
                    links.append(target)
                continue
            # A repository file: its path, in code, where the link's text does not say it already.
            path = repository_path(href, here)
            end = next(j for j in range(i + 1, len(children)) if children[j].type == "link_close")
            text = "".join(c.content for c in children[i + 1 : end])
            named = path.endswith(text.strip().strip("/")) and text.strip()
            children[i] = _html(Markup('<span class="repo-file" title="{}">').format(path))
            after = Markup("</span>") if named else Markup(' (<code class="path">{}</code>)</span>').format(path)
            children[end] = _html(after)


def _html(markup: Markup) -> Token:
    token = Token("html_inline", "", 0)
    token.content = str(markup)
    return token


def _fence(md: MarkdownIt) -> None:
    def fence(renderer: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        language, _, quote = token.info.partition(" quote=")
        token.info = language
        html = RendererHTML.fence(renderer, tokens, idx, options, env)
        if not quote:
            return str(html)
        path, _, name = quote.partition("#")
        caption = Markup('<figcaption>Quoted from <code class="path">{}</code> (region <code>{}</code>)</figcaption>')
        # markdown-it's own output (it escaped the code): markup already.
        block = Markup(html)  # noqa: S704  # nosec B704
        return str(Markup('<figure class="quote">{}{}</figure>\n').format(caption.format(path, name), block))

    md.add_render_rule("fence", fence)


def render(text: str, here: str, slugs: tuple[str, ...]) -> Chapter:
    """`here`: the file's path under docs/ (guidance/protect-api.md), for its relative links."""
    md = _markdown()
    _fence(md)
    tokens = md.parse(_lift_markers(text))
    links: list[str] = []
    _rewrite(tokens, here, slugs, links)
    heading = next((tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"), "")
    # With raw HTML off, markdown-it escapes all text; the only markup is its own and _rewrite_inline's.
    html = Markup(md.renderer.render(tokens, md.options, {}))  # noqa: S704  # nosec B704
    return Chapter(title=heading, html=html, links=tuple(links))


def read(docs: Path, folder: str, name: str) -> str | None:
    """The text of docs/<folder>/<name>.md, or None where there is none (a name is checked before it is
    joined to a path: nothing outside the folder can be named)."""
    if not (NAME.fullmatch(name) or name == "README"):
        return None
    path = docs / folder / f"{name}.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def diagram(docs: Path, name: str) -> Path | None:
    if not NAME.fullmatch(name):
        return None
    path = docs / "diagrams" / f"{name}.svg"
    return path if path.is_file() else None
