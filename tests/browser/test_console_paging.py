"""The progress list's keyset pages in real Chromium: staff go forward with Next and back
with Previous, the summary names the page, and no order shows twice."""

import re
from datetime import timedelta

import factories
import order_support as support
import pytest
from playwright.sync_api import expect

from marketplace.database import db, utcnow

pytestmark = pytest.mark.browser


def test_staff_page_through_open_orders(app, live_server, page, screenshots):
    now = utcnow()
    with app.app_context():
        session = db.session
        p = support.parties(session)
        p.provider_org.name = "Suzhou Patent Agency"
        p.buyer_org.name = "Taicang New Materials Co., Ltd."
        for n in range(7):
            support.order(session, p, "in_progress", price=100000 + n * 25000,
                          title=f"Patent search and analysis, batch {n + 1}",
                          due_at=now + timedelta(days=5 + n), accepted_at=now - timedelta(days=1),
                          paid_at=now - timedelta(days=2))
        staff = factories.user(session, role="staff")
        session.commit()
        email = staff.email
    app.config["PAGE_SIZE"] = 3
    try:
        page.goto(f"{live_server}/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_role("button", name=re.compile("Log in")).click()
        expect(page.get_by_test_id("account-menu")).to_be_visible()
        page.goto(f"{live_server}/staff/progress")
        summary = page.get_by_test_id("pagination-summary")
        expect(summary).to_have_text("Showing 1–3 of 7 open orders · page 1 of 3")
        first = page.get_by_test_id("progress-row").evaluate_all(
            "rows => rows.map(r => r.dataset.order)")
        screenshots(page, "progress-page-1")
        page.get_by_role("link", name="Next page").click()
        expect(summary).to_have_text("Showing 4–6 of 7 open orders · page 2 of 3")
        second = page.get_by_test_id("progress-row").evaluate_all(
            "rows => rows.map(r => r.dataset.order)")
        assert set(first).isdisjoint(second)
        page.get_by_role("link", name="Next page").click()
        expect(summary).to_have_text("Showing 7–7 of 7 open orders · page 3 of 3")
        expect(page.get_by_role("link", name="Next page")).to_have_count(0)
        screenshots(page, "progress-last-page")
        page.get_by_role("link", name="Previous page").click()
        expect(summary).to_have_text("Showing 4–6 of 7 open orders · page 2 of 3")
        page.get_by_role("link", name="Previous page").click()
        expect(summary).to_have_text("Showing 1–3 of 7 open orders · page 1 of 3")
        assert page.get_by_test_id("progress-row").evaluate_all(
            "rows => rows.map(r => r.dataset.order)") == first
    finally:
        app.config["PAGE_SIZE"] = 24
