"""The navbar stays one row on desktop screens for a buyer with the most in it (a long name,
items in the cart, unread notifications), its search box is wide enough to read what was
typed wherever it is a box, and on a phone everything folds behind the toggler without
widening the page; the cart's summary sits below the lines there, not over the footer."""

import re

import factories
import pytest
from playwright.sync_api import expect

from marketplace.database import db
from marketplace.notifications import notify
from orders import cart

pytestmark = pytest.mark.browser

LONG_NAME = "欧阳明远 Ouyang Mingyuan-Alexander Fitzgerald"


def _busy_buyer(session):
    buyer = factories.user(session, factories.enterprise(session))
    buyer.full_name = LONG_NAME
    listing = factories.product(session)
    cart.add(session, buyer, listing.packages[0].id)
    for n in range(3):
        notify(session, buyer, "order.accepted", f"Order accepted {n}", "The institution accepted.")
    session.commit()
    return buyer


def test_navbar_is_one_row_with_a_readable_search_box(app, live_server, page, screenshots):
    with app.app_context():
        buyer = _busy_buyer(db.session)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(buyer.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name=re.compile("Log in")).click()
    menu = page.get_by_test_id("account-menu")
    expect(menu).to_be_visible()

    for width in (992, 1200, 1280, 1366, 1440, 1920):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"{live_server}/cart")
        nav = page.locator("nav.navbar").bounding_box()
        assert nav["height"] < 64, (width, nav)  # one row (a second one makes it ~100 px)
        assert page.eval_on_selector("html", "e => e.scrollWidth - e.clientWidth") <= 0, width
        expect(page.get_by_test_id("cart-count")).to_have_text("1")
        expect(page.get_by_test_id("unread-count")).to_have_text("3")
        # However the name is cut in the bar, the open menu starts with all of it.
        menu.click()
        expect(page.get_by_test_id("account-menu-name")).to_have_text(LONG_NAME)
        menu.click()
        expect(page.get_by_test_id("account-menu-name")).to_be_hidden()
        search = page.get_by_test_id("navbar-search")
        if width >= 1200:
            assert search.bounding_box()["width"] >= 140, width  # "Search services" fits
        else:  # 992-1199: an icon that opens the search page
            expect(search).to_be_hidden()
            expect(page.get_by_title("Search services")).to_be_visible()
        screenshots(page, f"navbar-{width}")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/cart")
    expect(page.get_by_test_id("navbar-search")).to_be_hidden()
    page.locator(".navbar-toggler").click()
    expect(page.get_by_test_id("navbar-search")).to_be_visible()
    assert page.eval_on_selector("html", "e => e.scrollWidth - e.clientWidth") <= 0
    search_box = page.locator("form.navbar-search").bounding_box()
    assert search_box["x"] + search_box["width"] <= 390, search_box
    menu.click()
    expect(page.get_by_test_id("account-menu-name")).to_have_text(LONG_NAME)
    screenshots(page, "navbar-phone-open")

    # Below the cart, the summary follows the lines and ends above the footer.
    _cart_summary_follows_the_lines(page)


def _cart_summary_follows_the_lines(page):
    lines = page.get_by_test_id("cart-group").bounding_box()
    summary = page.locator("aside .product-aside").bounding_box()
    footer = page.locator("footer").bounding_box()
    assert summary["y"] - (lines["y"] + lines["height"]) < 48, (lines, summary)
    assert summary["y"] + summary["height"] <= footer["y"], (summary, footer)


@pytest.mark.parametrize("language", ["en", "zh_Hans_CN"])
def test_a_short_account_name_shows_whole_on_a_1366_px_laptop(app, live_server, page, language):
    """At 1366 px every name used to be cut to an ellipsis (5rem); a short one now fits whole,
    in one row, in both languages, with items in the cart and unread notifications."""
    with app.app_context():
        buyer = _busy_buyer(db.session)
        buyer.full_name = "王芳 Wang Fang"
        db.session.commit()
    page.set_viewport_size({"width": 1366, "height": 800})
    page.context.add_cookies([{"name": "lang", "value": language, "url": live_server}])
    page.goto(f"{live_server}/login")
    page.locator("#email").fill(buyer.email)
    page.locator("#password").fill(factories.PASSWORD)
    page.get_by_test_id("login-form").locator("button[type=submit]").click()
    name = page.locator(".navbar-account-name")
    expect(name).to_have_text("王芳 Wang Fang")
    assert name.evaluate("e => e.scrollWidth <= e.clientWidth"), "the name is cut"
    assert page.locator("nav.navbar").bounding_box()["height"] < 64  # one row
    assert page.get_by_test_id("navbar-search").bounding_box()["width"] >= 140
    expect(page.get_by_test_id("language-switch")).to_be_visible()
