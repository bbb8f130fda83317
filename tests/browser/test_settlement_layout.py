"""The staff statement page fits its screen: with eight-figure amounts, a long buyer name and
long order titles, every figure column (net payable last) is visible without scrolling the
table at 1280 and 1440 pixels, amounts never wrap, and on a phone the table scrolls inside its
own box while the page itself does not."""


import order_support as osup
import pytest
import settlement_support as ss
from helpers import browser_login as _login
from playwright.sync_api import expect

from marketplace.database import db, utcnow
from orders import payments, services, settlement

pytestmark = pytest.mark.browser


def _big_statement(session):
    p = osup.parties(session)
    p.buyer_org.name = "Suzhou Industrial Park Advanced Photonics Materials Co., Ltd."
    big = []
    for price in (1_234_567_890, 987_654_321, 45_000_000):  # ¥12,345,678.90 ...
        order = ss._paid(session, p, price)
        order.title = "Freedom-to-operate analysis and patent landscape for photonic chips"
        services.complete(session, order, p.buyer)
        big.append(order)
    payments.staff_refund(session, big[1], p.staff, 123_456_789, "Partial refund agreed")
    session.commit()
    run = settlement.run_period(session, settlement.month(f"{utcnow():%Y-%m}"), p.staff)
    session.commit()
    statement = run.batch.statements[0]
    return p.staff, statement.id, statement.net


def _overflow(page, selector):
    return page.eval_on_selector(selector, "e => e.scrollWidth - e.clientWidth")


def test_statement_table_fits_at_1280_and_1440(app, live_server, page, screenshots):
    with app.app_context():
        staff, statement_id, net = _big_statement(db.session)
    _login(page, live_server, staff)
    for width in (1280, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server}/staff/settlement/statements/{statement_id}")
        totals = page.get_by_test_id("statement-totals")
        expect(totals).to_contain_text("¥22,672,222.11")  # gross of the three orders
        assert _overflow(page, "[data-testid=statement-table-wrap]") <= 0, width
        assert _overflow(page, "html") <= 0, width
        wrap = page.get_by_test_id("statement-table-wrap").bounding_box()
        net_cell = totals.locator("[data-figure=net]").bounding_box()
        assert net_cell["x"] + net_cell["width"] <= wrap["x"] + wrap["width"] + 0.5, width
        # Amounts stay on one line: the text of every figure cell is one line high.
        heights = page.eval_on_selector_all(
            "[data-testid=statement-orders] td[data-figure]",
            """cells => cells.map(c => {
                 const r = document.createRange(); r.selectNodeContents(c);
                 return r.getBoundingClientRect().height / parseFloat(getComputedStyle(c).lineHeight);
               })""")
        assert heights and max(heights) < 1.5, (width, heights)
        expect(page.get_by_test_id("mark-paid-form")).to_be_visible()
        screenshots(page, f"statement-{width}")
    assert page.get_by_test_id("amount-to-pay").inner_text().replace(",", "").startswith(
        f"¥{net // 100}")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/staff/settlement/statements/{statement_id}")
    assert _overflow(page, "html") <= 0  # the page never scrolls sideways; the table may
    expect(page.get_by_test_id("mark-paid")).to_be_visible()
    screenshots(page, "statement-390")
