"""The tour data (guidance: identity-zero-trust-compliance): complete, consistent, and live where done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web.tour import PRINCIPLES, load_tour

WEB_SRC = Path(__file__).resolve().parents[1] / "src" / "web"
ROOT = WEB_SRC.parents[2]
# Some articles are shown by a command (`make report`, `make gates`), not a page: their markers are in
# the code of the other members or in the infrastructure (Terraform, the registration manifest), and
# their live link is their tour row.
CODE = [
    *(p for src in ROOT.glob("*/src") if src.is_dir() for p in src.rglob("*.py")),
    *(p for p in (ROOT / "infra").rglob("*") if p.suffix in (".tf", ".yaml") and p.is_file()),
]


def test_the_tour_lists_all_27_articles_in_order() -> None:
    tour = load_tour()
    assert [a.number for a in tour.articles] == list(range(1, 28))
    assert len({a.slug for a in tour.articles}) == 27
    assert tour.articles[0].slug == "identity-zero-trust-compliance"
    assert tour.articles[8].slug == "user-authentication"
    assert tour.articles[21].slug == "api-calls-api"
    assert all(set(a.principles) <= set(PRINCIPLES) for a in tour.articles)


def test_done_articles_are_the_ones_built_and_each_has_a_live_page_and_a_marker() -> None:
    tour = load_tour()
    assert [a.number for a in tour.done] == list(range(1, 28))
    code = "\n".join(p.read_text() for p in CODE)
    for article in tour.done:
        assert article.live, article.slug
        assert article.marker in code, article.slug
    assert all(a.live is None for a in tour.articles if a.status == "planned")


def test_live_links_lead_somewhere_in_the_app(make_browser: Any) -> None:
    browser = make_browser(attack_lab=True)  # as `make run` starts it: every live page served
    for article in load_tour().done:
        assert article.live is not None
        r = browser.get(article.live)
        assert r.status_code in (200, 302), article.live  # 302: sign in first


def test_a_live_link_to_a_page_this_deployment_lacks_is_not_shown(make_browser: Any) -> None:
    without_lab = make_browser(attack_lab=False).get("/").text
    assert 'href="/lab"' not in without_lab
    assert 'href="/lab"' in make_browser(attack_lab=True).get("/").text


def test_home_lists_every_article_with_its_status(browser: Any) -> None:
    html = browser.get("/").text
    for article in load_tour().articles:
        assert f'id="{article.slug}" class="{article.status}"' in html
