"""The workshop in the app (guidance: identity-zero-trust-compliance): each chapter at /guide/<slug>, one click
from its tour row, its live page and Microsoft's article; the diagrams served as pictures and nothing else;
every page names the articles it demonstrates; nothing outside docs/ can be asked for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from web.chapters import in_app, render
from web.settings import Settings
from web.tour import LEARN, load_tour

pytestmark = pytest.mark.guidance("identity-zero-trust-compliance")

ROOT = Path(__file__).resolve().parents[2]
SLUGS = tuple(a.slug for a in load_tour().articles)
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\n'


def _look_pages() -> tuple[str, ...]:
    """PAGES of tests/browser/test_look.py, read from its source (importing it needs Playwright)."""
    source = (ROOT / "tests" / "browser" / "test_look.py").read_text()
    found = re.search(r"^PAGES = \(([^)]*)\)", source, re.M | re.S)
    assert found, "test_look.py defines PAGES"
    return tuple(re.findall(r'"([^"]+)"', found.group(1)))


def _demonstrated(html: str) -> list[str]:
    strip = html.split('<aside class="demonstrates"', 1)
    return re.findall(r'<a href="/guide/([a-z0-9-]+)">', strip[1].split("</aside>", 1)[0]) if len(strip) > 1 else []


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A docs folder with one chapter, a module, a diagram, and a file beside the folder (not to be served)."""
    (tmp_path / "docs" / "guidance").mkdir(parents=True)
    (tmp_path / "docs" / "workshop").mkdir()
    (tmp_path / "docs" / "diagrams").mkdir()
    (tmp_path / "docs" / "guidance" / "README.md").write_text("# Chapters\n\n[Protect](protect-api.md)\n")
    (tmp_path / "docs" / "guidance" / "protect-api.md").write_text(
        "# Protect an API\n\n<p>raw</p>\n\n![flow](../diagrams/sign-in.svg)\n\n"
        "See [the api](api-calls-api.md#see-it-live), [the keys](../../zerotrust/src/zerotrust/keyset.py) and "
        "[module 1](../workshop/01-sign-in.md).\n\n"
        "<!-- quote: zerotrust/src/zerotrust/protect.py checks -->\n```python\nx = 1\n```\n"
    )
    (tmp_path / "docs" / "workshop" / "01-sign-in.md").write_text(
        "# Module 1\n\nRead [protect](../guidance/protect-api.md).\n"
    )
    (tmp_path / "docs" / "diagrams" / "sign-in.svg").write_text(SVG)
    (tmp_path / "docs" / "secret.svg").write_text(SVG)
    (tmp_path / "secret.md").write_text("# not served\n")
    return tmp_path / "docs"


def test_a_chapter_renders_with_its_links_rewritten_and_raw_html_as_text(make_browser: Any, docs: Path) -> None:
    r = make_browser(docs_dir=docs).get("/guide/protect-api")
    assert r.status_code == 200
    html = r.text
    assert '<h1 id="protect-an-api">Protect an API</h1>' in html
    assert "<p>raw</p>" not in html and "&lt;p&gt;raw&lt;/p&gt;" in html
    assert '<img src="/guide/diagrams/sign-in.svg" alt="flow"' in html
    assert '<a href="/guide/api-calls-api#see-it-live">the api</a>' in html
    assert '<a href="/guide/workshop/01-sign-in">module 1</a>' in html
    # A repository file is named, not linked: the app serves no repository files.
    assert '<code class="path">zerotrust/src/zerotrust/keyset.py</code>' in html
    assert 'href="../../zerotrust' not in html
    # The quoted block says where it comes from; the marker itself is not shown.
    assert 'Quoted from <code class="path">zerotrust/src/zerotrust/protect.py</code>' in html
    assert "quote:" not in html.split('<article class="chapter">', 1)[1].split("Quoted from", 1)[0]
    # One click to Learn, the tour row and the live page; and the strip names this article.
    assert f'href="{LEARN}protect-api"' in html
    assert 'href="/#protect-api"' in html
    assert _demonstrated(html) == ["protect-api"]
    assert r.headers["cache-control"] == "no-store"


def test_each_of_the_27_chapters_renders_from_the_repository(browser: Any) -> None:
    pictures: set[str] = set()
    for article in load_tour().articles:
        r = browser.get(f"/guide/{article.slug}")
        assert r.status_code == 200, article.slug
        assert f'href="{article.learn}"' in r.text and f'href="/#{article.slug}"' in r.text, article.slug
        assert not re.search(r'(href|src)="[^"]*(\.\./|\.md\b)', r.text), article.slug
        # Its code, quoted from the source, says where from; no quote marker shows as text.
        assert 'Quoted from <code class="path">' in r.text and "&lt;!-- quote" not in r.text, article.slug
        # Its pictures are served by the app, as SVG.
        for src in re.findall(r'<img src="([^"]+)"', r.text):
            picture = browser.get(src)
            assert picture.status_code == 200 and picture.headers["content-type"] == "image/svg+xml", src
            pictures.add(src)
    assert "/guide/diagrams/signin.svg" in pictures  # the chapters do show the diagrams
    index = browser.get("/guide")
    assert index.status_code == 200
    assert all(f'href="{a.chapter}"' in index.text for a in load_tour().articles)


def test_the_guide_is_public_like_the_tour(browser: Any) -> None:
    for path in ("/", "/guide", "/guide/protect-api"):
        assert browser.get(path).status_code == 200, path
    browser.sign_in("alice")
    assert "alice@contoso.test" in browser.get("/guide/protect-api").text


def test_a_workshop_module_renders_and_names_the_chapters_it_links(make_browser: Any, docs: Path) -> None:
    r = make_browser(docs_dir=docs).get("/guide/workshop/01-sign-in")
    assert r.status_code == 200
    assert '<a href="/guide/protect-api">protect</a>' in r.text
    assert _demonstrated(r.text) == ["protect-api"]


def test_a_diagram_is_served_as_an_svg_that_can_do_nothing(make_browser: Any, docs: Path) -> None:
    r = make_browser(docs_dir=docs).get("/guide/diagrams/sign-in.svg")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.text == SVG
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/guide/no-such-article",
        "/guide/README",
        "/guide/Protect-API",
        "/guide/protect-api.md",
        "/guide/workshop/99-none",
        "/guide/workshop/README",
        "/guide/workshop/01-sign-in.md",
        "/guide/diagrams/none.svg",
        "/guide/diagrams/Sign-In.svg",
        "/guide/diagrams/sign_in.svg",
        "/guide/diagrams/sign-in.png",
        "/guide/diagrams/sign-in",
        "/guide/diagrams/.svg",
        "/guide/diagrams/%2e%2e%2fsecret.svg",
        "/guide/diagrams/..%2fsecret.svg",
        "/guide/diagrams/../secret.svg",
        "/guide/diagrams/..%5csecret.svg",
        "/guide/..%2f..%2fsecret",
        "/guide/..%2f..%2fetc%2fpasswd",
        "/guide/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/guide/workshop/..%2f..%2fsecret",
        "/guide/workshop/..%2fguidance%2fprotect-api",
        "/guide/%00",
        "/guide/protect-api%00",
    ],
)
def test_nothing_outside_the_docs_folders_can_be_asked_for(make_browser: Any, docs: Path, path: str) -> None:
    r = make_browser(docs_dir=docs).get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert r.headers["content-type"].startswith("text/html")
    assert "not served" not in r.text and "<svg" not in r.text
    assert "Traceback" not in r.text


def test_an_unknown_chapter_says_where_the_chapters_are(browser: Any) -> None:
    r = browser.get("/guide/no-such-article")
    assert r.status_code == 404
    assert "No such chapter" in r.text and "no-such-article" in r.text and 'href="/guide"' in r.text


def test_without_a_workshop_folder_its_pages_are_a_clear_404(make_browser: Any, tmp_path: Path) -> None:
    (tmp_path / "guidance").mkdir()
    browser = make_browser(docs_dir=tmp_path)
    for path in ("/guide/workshop", "/guide/workshop/01-sign-in"):
        r = browser.get(path)
        assert r.status_code == 404 and "No such workshop module" in r.text, path
    assert browser.get("/guide").status_code == 404  # no index either: said, not a 500


@pytest.mark.parametrize(
    ("href", "url"),
    [
        ("protect-api.md", "/guide/protect-api"),
        ("README.md", "/guide"),
        ("api-calls-api.md#see-it-live", "/guide/api-calls-api#see-it-live"),
        ("not-an-article.md", None),
        ("../workshop/README.md", "/guide/workshop"),
        ("../workshop/02-tokens.md", "/guide/workshop/02-tokens"),
        ("../diagrams/on-behalf-of.svg", "/guide/diagrams/on-behalf-of.svg"),
        ("../diagrams/On_Behalf.svg", None),
        ("../deploy.md", None),
        ("../../infra/registrations.yaml", None),
        ("../../../etc/passwd", None),
        ("https://learn.microsoft.com/x", "https://learn.microsoft.com/x"),
        ("#where", "#where"),
    ],
)
def test_links_between_chapters_stay_in_the_app(href: str, url: str | None) -> None:
    assert in_app(href, "guidance/protect-api.md", SLUGS) == url


def test_every_page_of_the_look_test_names_the_articles_it_demonstrates(make_browser: Any, fake_api: Any) -> None:
    browser = make_browser(attack_lab=True)
    fake_api.tasks["t1"] = {"id": "t1", "title": "Plan", "done": False}
    browser.sign_in("bob")
    pages = (*_look_pages(), "/tasks/t1/share")
    assert {"/", "/tasks", "/chain", "/guide"} <= set(pages)
    for path in pages:
        html = browser.get(path).text
        named = _demonstrated(html)
        assert named, f"{path} names no article"
        assert all(f'href="{LEARN}{slug}"' in html for slug in named), path


def test_every_page_the_tour_names_is_a_page_of_the_app(make_browser: Any) -> None:
    app = make_browser(attack_lab=True).http.app
    routes = {str(r.path) for r in iter_route_contexts(app.routes) if "GET" in (getattr(r, "methods", None) or ())}
    named = {p for a in load_tour().articles for p in a.pages}
    assert named and named <= routes, named - routes


def test_a_repository_file_link_whose_text_is_its_path_is_shown_once() -> None:
    html = render("[infra/registrations.yaml](../../infra/registrations.yaml)\n", "guidance/x.md", SLUGS).html
    assert html.count("infra/registrations.yaml") == 2  # the title attribute and the text, no repeat


def test_each_tour_row_links_its_chapter_and_learn(browser: Any) -> None:
    html = browser.get("/").text
    for article in load_tour().articles:
        row = html.split(f'id="{article.slug}"', 1)[1].split("</tr>", 1)[0]
        assert f'<a href="{article.chapter}">' in row and f'href="{article.learn}"' in row, article.slug


@pytest.mark.parametrize(
    ("heading", "id_"),
    [
        ("See it live", "see-it-live"),
        ("4. Verifying the deployment", "4-verifying-the-deployment"),
        ("What `make quotes` does", "what-make-quotes-does"),
        ("Tokens: who, why?", "tokens-who-why"),
    ],
)
def test_headings_get_the_ids_github_gives_them(heading: str, id_: str) -> None:
    assert f'<h2 id="{id_}">' in render(f"## {heading}\n", "guidance/x.md", SLUGS).html


def test_the_docs_folder_is_the_clones_unless_web_docs_dir_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings().docs_dir == ROOT / "docs"
    monkeypatch.setenv("WEB_DOCS_DIR", str(tmp_path))
    assert Settings().docs_dir == tmp_path


def test_the_tours_flow_links_land_on_a_chapters_diagram(browser: Any) -> None:
    links = re.findall(r'<a href="(/guide/[a-z0-9-]+)#the-flow">', browser.get("/").text)
    assert len(links) == 7
    for link in links:
        chapter = browser.get(link).text
        assert 'id="the-flow"' in chapter, link
        assert re.search(r'<img src="/guide/diagrams/[a-z0-9-]+\.svg"', chapter), link
