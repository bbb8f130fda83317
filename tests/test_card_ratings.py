"""Listing cards (category pages, home, search hits) show the listing's average rating and
review count beside the institution's credibility badge; the cached card changes at once when
a review is published, hidden or shown again, and each change queues the listing for search."""

import re
from datetime import UTC, datetime

import factories
import order_support as support
import pytest
from conftest import post_form
from sqlalchemy import func, select

from catalog import reviews
from catalog.models import Review, SearchOutbox
from catalog.search.index import reindex_all
from catalog.search.worker import drain_outbox

FAIR = {"clarity": "4", "cooperation": "3", "payment": "5"}
FIVES = {"quality": "5", "timeliness": "5", "communication": "5", "value": "5"}
THREES = {"quality": "3", "timeliness": "3", "communication": "3", "value": "3"}


@pytest.fixture
def p(session):
    parties = support.parties(session)
    session.commit()
    return parties


def rate(session, p, product, scores):
    """A completed order of ``product`` rated by both sides, so the buyer review is published."""
    order = support.order(session, p, "completed", completed_at=datetime.now(UTC),
                          product=product)
    session.commit()
    now = datetime.now(UTC)
    review = reviews.submit_review(session, order, p.buyer, scores, "", now=now, blind_days=14)
    reviews.submit_review(session, order, p.provider, FAIR, "", now=now, blind_days=14)
    session.commit()
    return review


def card(html: str, product_id: int) -> str:
    match = re.search(rf'<div class="card h-100 product-card" data-testid="product-card" '
                      rf'data-product-id="{product_id}">.*?</div>\s*</div>\s*</div>', html, re.S)
    assert match, "the listing's card is on the page"
    return match.group(0)


def card_rating(html: str, product_id: int) -> tuple[str, str] | None:
    found = re.search(r'data-testid="card-rating" data-average="([\d.]+)" data-count="(\d+)"',
                      card(html, product_id))
    return found.groups() if found else None


def queued_for_rating(session, product_id: int) -> int:
    return session.scalar(select(func.count()).select_from(SearchOutbox).where(
        SearchOutbox.product_id == product_id, SearchOutbox.reason == "rating"))


def test_rating_change_shows_at_once_on_the_category_page(session, client, p):
    listing = factories.product(session, p.provider_org, title="Rated patent drafting")
    session.commit()
    page = client.get("/c/patent-application").get_data(as_text=True)
    assert card_rating(page, listing.id) is None  # no review yet: no stars, no "(0)"
    assert 'data-testid="credibility-badge"' in card(page, listing.id)

    rate(session, p, listing, FIVES)
    assert queued_for_rating(session, listing.id) >= 1
    page = client.get("/c/patent-application").get_data(as_text=True)
    assert card_rating(page, listing.id) == ("5.00", "1")
    shown = card(page, listing.id)
    # Beside the credibility badge, on the institution's line.
    assert re.search(r'data-testid="credibility-badge".*?</(span|a)>\s*'
                     r'<span class="card-rating', shown, re.S)
    assert "5.00" in shown and "(1<span class=\"visually-hidden\"> review</span>)" in shown

    second = rate(session, p, listing, THREES)
    page = client.get("/c/patent-application").get_data(as_text=True)
    assert card_rating(page, listing.id) == ("4.00", "2")  # (500 + 300) / 2, not the cached 5.00

    # The card is cached by the rating fields themselves, not only by what usually changes
    # with them (the institution's credibility score): a rating-only change shows too.
    listing.rating_x100, listing.rating_count = 420, 7
    session.commit()
    page = client.get("/c/patent-application").get_data(as_text=True)
    assert card_rating(page, listing.id) == ("4.20", "7")
    reviews.refresh_product_rating(session, listing.id)
    session.commit()

    support.login(client, p.staff)
    before = queued_for_rating(session, listing.id)
    assert post_form(client, f"/staff/reviews/{second.id}/hide",
                     {"reason": "Written by a competitor"}).status_code == 302
    assert queued_for_rating(session, listing.id) == before + 1
    support.logout(client)
    page = client.get("/c/patent-application").get_data(as_text=True)
    assert card_rating(page, listing.id) == ("5.00", "1")


def test_home_page_cards_show_the_rating(session, client, p):
    listing = factories.product(session, p.provider_org, title="Featured rated service",
                                featured=True)
    session.commit()
    rate(session, p, listing, THREES)
    home = client.get("/").get_data(as_text=True)
    assert card_rating(home, listing.id) == ("3.00", "1")


def test_credibility_change_updates_the_cached_card(session, client, p):
    listing = factories.product(session, p.provider_org, title="Credible service")
    session.commit()
    page = client.get("/c/patent-application").get_data(as_text=True)
    assert 'data-level="AA"' not in card(page, listing.id)
    p.provider_org.credibility_score, p.provider_org.credibility_level = 84, "AA"
    session.commit()
    page = client.get("/c/patent-application").get_data(as_text=True)
    assert 'data-level="AA" data-score="84"' in card(page, listing.id)


def test_search_hits_show_the_rating_after_the_outbox_drain(app, session, client, p, tmp_path,
                                                            monkeypatch):
    index_dir = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(index_dir))
    rated = factories.product(session, p.provider_org, title="Rated trademark watch")
    unrated = factories.product(session, p.provider_org, title="Unrated trademark watch")
    session.commit()
    reindex_all(session, index_dir)
    rate(session, p, rated, FIVES)
    rate(session, p, rated, THREES)
    drain_outbox(session, index_dir)

    html = client.get("/search?q=trademark").get_data(as_text=True)
    hits = dict(re.findall(r'data-testid="search-hit" data-product-id="(\d+)">(.*?)</li>',
                           html, re.S))
    assert re.search(r'data-testid="card-rating" data-average="4.00" data-count="2"',
                     hits[str(rated.id)])
    assert 'data-testid="card-rating"' not in hits[str(unrated.id)]
    assert session.scalar(select(func.count()).select_from(Review)) == 4
