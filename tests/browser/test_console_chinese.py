"""The staff console in Chinese, in real Chromium at 390, 1280 and 1920 px: every console page
speaks Chinese (no English label left in the nav, headings and buttons), the console nav is
on every console page (also Orders and Voucher programmes), no page scrolls sideways on a
phone, and the console nav stays one line from 1280 px up. Screenshots of each page and
width go to test-artifacts/<test name>/ for a person to look at."""

import re

import pytest
from helpers import browser_login
from playwright.sync_api import expect

from marketplace.database import db

pytestmark = pytest.mark.browser

DEMO_PASSWORD = "Demo-password-2026"
WIDTHS = (390, 1280, 1920)
LATIN_WORD = re.compile(r"\b[A-Za-z]{4,}\b")
# Words that stay Latin in Chinese pages: data (names, codes), brands and units.
ALLOWED = {"Stripe", "PaymentIntent", "YYYY", "Demo", "demo", "example", "Suzhou", "SIP",
           "CNY", "Cmd", "Ctrl"}


def _demo(app):
    from marketplace.demo.activity import load_demo_activity
    from marketplace.demo.catalogue import load_demo_data

    with app.app_context():
        load_demo_data(db.session, enterprises=30)
        db.session.commit()
        load_demo_activity(db.session, orders=40)
        db.session.commit()


def _console_pages(app) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from orders.models import Order, SettlementBatch, VoucherProgramme

    with app.app_context():
        s = db.session
        order = s.scalar(select(Order.id).where(Order.status == "in_progress").order_by(Order.id))
        batch = s.scalar(select(SettlementBatch.id).order_by(SettlementBatch.id))
        programme = s.scalar(select(VoucherProgramme.id).order_by(VoucherProgramme.id))
    pages = [("dashboard", "/staff"), ("progress", "/staff/progress"),
             ("orders", "/staff/orders"), ("credibility", "/staff/credibility"),
             ("settlement", "/staff/settlement"), ("audit", "/staff/audit"),
             ("vouchers", "/staff/vouchers"), ("reviews", "/staff/reviews")]
    if order:
        pages.append(("order", f"/staff/orders/{order}"))
    if batch:
        pages.append(("batch", f"/staff/settlement/{batch}"))
    if programme:
        pages.append(("programme", f"/staff/vouchers/{programme}"))
    return pages


def _names(app) -> list[str]:
    """Names of organisations and people: data, longest first."""
    from sqlalchemy import select

    from marketplace.models import Organisation, User

    with app.app_context():
        names = set(db.session.scalars(select(Organisation.name)))
        names |= set(db.session.scalars(select(User.full_name)))
    return sorted(names, key=len, reverse=True)


def _chrome_texts(page) -> str:
    """Labels the platform writes (nav, table heads, buttons, form labels). Headings are left
    out: an order's or a programme's heading is its title, which is data (the pseudo-locale
    test, tests/test_i18n_coverage.py, tells data from labels on every page)."""
    return " ".join(page.locator(
        "[data-testid=console-nav], main th, main label, main button"
    ).all_inner_texts())


def test_staff_console_in_chinese_at_phone_desktop_and_wide(app, live_server, browser,
                                                           screenshots):
    _demo(app)
    pages = _console_pages(app)
    names = _names(app)
    context = browser.new_context(locale="zh-CN")
    host = live_server.split("//", 1)[1].split(":", 1)[0]
    context.add_cookies([{"name": "lang", "value": "zh_Hans_CN", "domain": host, "path": "/"}])
    page = context.new_page()
    browser_login(page, live_server, "staff@demo.example", DEMO_PASSWORD)
    leftovers = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in pages:
            page.goto(live_server + url)
            expect(page.locator("html")).to_have_attribute("lang", re.compile("^zh"))
            expect(page.get_by_test_id("console-nav")).to_be_visible()
            text = _chrome_texts(page)
            for name in names:  # organisations and people named in labels are data
                text = text.replace(name, " ")
            words = {w for w in LATIN_WORD.findall(text) if w not in ALLOWED}
            if words:
                leftovers[url] = sorted(words)[:10]
            assert page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            ), f"{url} scrolls sideways at {width}px"
            if width >= 1280:
                tops = page.eval_on_selector_all(
                    "[data-testid=console-nav] > li",
                    "items => items.map(i => Math.round(i.offsetTop))")
                assert len(set(tops)) == 1, f"console nav wraps at {width}px on {url}"
            screenshots(page, f"{width}-{name}")
    context.close()
    # Names of organisations and people are data; labels must not be English.
    assert not leftovers, f"English labels on Chinese console pages: {leftovers}"
