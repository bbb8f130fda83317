"""Staff console pages and the ratings/credibility UI at desktop and phone widths, in real
Chromium: the console nav is one line from 1200px up (rare pages under "More", which opens
and leads to them), verification and moderation pages carry the same nav, the staff order page
offers "Cancel with refund" and no plain "Cancel order", listing cards show the rating beside
the credibility badge, and no page scrolls sideways on a 390px phone."""

import re
from datetime import UTC, datetime
from pathlib import Path

import factories
import order_support as support
import pytest
from helpers import browser_login as _login
from playwright.sync_api import expect

from catalog import reviews
from catalog.search.index import reindex_all
from marketplace.database import db

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"

FIVES = {"quality": "5", "timeliness": "5", "communication": "4", "value": "5"}
FAIR = {"clarity": "4", "cooperation": "3", "payment": "5"}


def _world(session):
    p = support.parties(session)
    p.provider_org.name = "Suzhou Industrial Park Intellectual Property Service Centre"
    admin = factories.user(session, role="admin")
    listing = factories.product(session, p.provider_org,
                                title="Invention patent filing with prior-art search")
    factories.provider(session, verified=False).verification_status = "pending"
    factories.product(session, p.provider_org, status="pending_review",
                      title="Trademark watch service")
    done = support.order(session, p, "completed", completed_at=datetime.now(UTC),
                         product=listing)
    open_order = support.order(session, p, "in_progress", product=listing,
                               title="Freedom-to-operate analysis for a coating line")
    session.commit()
    now = datetime.now(UTC)
    reviews.submit_review(session, done, p.buyer, FIVES, "Careful drafting", now=now,
                          blind_days=14)
    reviews.submit_review(session, done, p.provider, FAIR, "", now=now, blind_days=14)
    session.commit()
    return admin, listing.id, open_order.id


def _one_line(page) -> bool:
    tops = page.eval_on_selector_all(
        "[data-testid=console-nav] > li", "items => items.map(i => Math.round(i.offsetTop))")
    return len(set(tops)) == 1


def _no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def _phone_shot(page, request, name):
    """The first 1,400 pixels of a phone page at full size (a full-page shot of a long phone
    page is too thin to read)."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"phone-{name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": 390, "height": 1400})


def test_console_and_ratings_screens_at_desktop_and_phone(app, live_server, page, screenshots,
                                                          request, tmp_path, monkeypatch):
    index_dir = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(index_dir))
    with app.app_context():
        admin, listing_id, order_id = _world(db.session)
        reindex_all(db.session, index_dir)
    base = live_server
    _login(page, base, admin)

    for width in (1200, 1280, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{base}/staff")
        assert _one_line(page), f"console nav wraps at {width}px"
        if width == 1280:
            screenshots(page, "dashboard-1280")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_test_id("console-nav-more").click()
    expect(page.get_by_test_id("console-nav-commissions")).to_be_visible()  # admins only
    page.get_by_test_id("console-nav-audit").click()
    expect(page.get_by_test_id("console-nav-more")).to_have_text(re.compile("Audit log"))
    expect(page.get_by_test_id("console-nav-more")).to_have_class(re.compile(r"\bactive\b"))

    page.get_by_test_id("console-nav-verification").click()
    expect(page.get_by_test_id("console-nav-verification")).to_have_attribute(
        "aria-current", "page")
    assert _one_line(page)
    screenshots(page, "verification-1280")
    page.get_by_test_id("console-nav-moderation").click()
    expect(page.get_by_test_id("console-nav-moderation")).to_have_attribute(
        "aria-current", "page")
    screenshots(page, "moderation-1280")

    page.goto(f"{base}/staff/orders/{order_id}")
    expect(page.get_by_test_id("action-cancel-open")).to_have_count(0)
    page.get_by_role("tab", name="Cancel with refund").click()
    expect(page.get_by_test_id("cancel-form")).to_be_visible()
    screenshots(page, "staff-order-1280")

    page.goto(f"{base}/c/patent-application")
    card = page.locator(f'[data-testid=product-card][data-product-id="{listing_id}"]')
    expect(card.get_by_test_id("card-rating")).to_have_text(re.compile(r"4\.75\s*\(1"))
    # (the review just recomputed the institution's score, so its level is whatever it is now)
    expect(card.get_by_test_id("credibility-badge")).to_have_attribute(
        "data-level", re.compile(r"^(AAA|AA|A|B|C)$"))
    screenshots(page, "category-1280")
    page.goto(f"{base}/search?q=patent")
    hit = page.locator(f'[data-testid=search-hit][data-product-id="{listing_id}"]')
    expect(hit.get_by_test_id("card-rating")).to_have_text(re.compile(r"4\.75\s*\(1"))
    screenshots(page, "search-1280")

    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in (("dashboard", "/staff"), ("verification", "/staff/verification"),
                       ("moderation", "/staff/moderation"), ("progress", "/staff/progress"),
                       ("credibility", "/staff/credibility"),
                       ("staff-order", f"/staff/orders/{order_id}"),
                       ("category", "/c/patent-application"), ("search", "/search?q=patent"),
                       ("product", f"/products/{listing_id}")):
        page.goto(f"{base}{path}")
        assert _no_sideways_scroll(page), f"{name} scrolls sideways at 390px"
        if name == "search":  # facets fold away: the first hit is on the first screen
            expect(page.locator('[data-facet="category"]').first).to_be_hidden()
            assert page.get_by_test_id("search-hit").first.bounding_box()["y"] < 844
            _phone_shot(page, request, "search-folded")
            page.get_by_test_id("facets-toggle").click()
            expect(page.locator('[data-facet="category"]').first).to_be_visible()
        _phone_shot(page, request, name)
