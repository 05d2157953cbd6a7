"""The workshop in the app: each guidance chapter at /guide/<slug> (one click from its tour row, its live page
and Microsoft's article), the index at /guide, the workshop's modules at /guide/workshop/<name> and the
diagrams at /guide/diagrams/<name>.svg, all read from WEB_DOCS_DIR.

# zt: identity-zero-trust-compliance
Public, like the tour at /: the chapters are the repository's own docs, nothing in them depends on who
asks; a signed-in person still sees who they are in the header.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from .. import chapters
from ..dependencies import ClientsDep, OptionalSession
from ..pages import error_page, page, served_paths
from ..tour import GUIDE, load_tour

router = APIRouter(prefix=GUIDE, tags=["guide"])

# A diagram is a picture and nothing else: no script, no fetch, no form, shown in no frame but this app's.
SVG_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'self'; sandbox"
)


def _slugs() -> tuple[str, ...]:
    return tuple(a.slug for a in load_tour().articles)


def _missing(request: Request, what: str, name: str) -> Response:
    detail = f"There is no {what} named “{name}”. Every chapter and module is listed at {GUIDE}."
    return error_page(request, 404, f"No such {what}", detail)


@router.get("")
async def index(request: Request, c: ClientsDep, session: OptionalSession) -> Response:
    docs = c.settings.docs_dir
    text = chapters.read(docs, "guidance", "README")
    if text is None:
        return _missing(request, "guide", "README")
    chapter = chapters.render(text, "guidance/README.md", _slugs())
    workshop = chapters.read(docs, "workshop", "README") is not None
    return page(request, "guide.html", chapter=chapter, article=None, tour=load_tour(), workshop=workshop)


@router.get("/workshop")
async def workshop_index(request: Request, c: ClientsDep, session: OptionalSession) -> Response:
    return _module(request, c, "README")


@router.get("/workshop/{name}")
async def workshop(request: Request, c: ClientsDep, session: OptionalSession, name: str) -> Response:
    if name == "README":
        return _missing(request, "workshop module", name)
    return _module(request, c, name)


def _module(request: Request, c: ClientsDep, name: str) -> Response:
    text = chapters.read(c.settings.docs_dir, "workshop", name)
    if text is None:
        return _missing(request, "workshop module", name)
    chapter = chapters.render(text, f"workshop/{name}.md", _slugs())
    # A module demonstrates the articles whose chapters it links to.
    tour = load_tour()
    linked = {link.split("#")[0] for link in chapter.links}
    demonstrates = [a for a in tour.articles if a.chapter in linked]
    if not demonstrates:  # a module that links no chapter: the route's own (tour.yaml `pages`)
        return page(request, "guide.html", chapter=chapter, article=None)
    return page(request, "guide.html", chapter=chapter, article=None, demonstrates=demonstrates)


@router.get("/diagrams/{name}.svg")
async def diagram(request: Request, c: ClientsDep, name: str) -> Response:
    path = chapters.diagram(c.settings.docs_dir, name)
    if path is None:
        return _missing(request, "diagram", name)
    headers = {"Content-Security-Policy": SVG_CSP, "Cache-Control": "no-cache"}
    return FileResponse(path, media_type="image/svg+xml", headers=headers)


@router.get("/{slug}")
async def chapter(request: Request, c: ClientsDep, session: OptionalSession, slug: str) -> Response:
    article = load_tour().by_slug(slug)
    text = chapters.read(c.settings.docs_dir, "guidance", slug) if article else None
    if article is None or text is None:
        return _missing(request, "chapter", slug)
    live = article.live if article.live and article.live.split("?")[0].split("#")[0] in served_paths(request) else None
    return page(
        request,
        "guide.html",
        chapter=chapters.render(text, f"guidance/{slug}.md", _slugs()),
        article=article,
        live=live,
        demonstrates=[article],
    )
