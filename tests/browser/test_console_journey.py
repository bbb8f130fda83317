"""The monitors' console in real Chromium: staff log in, see an overdue order on the
dashboard, extend its due date, rule on a dispute with a partial refund (a wrong amount is
refused first), run the month's settlement and download the institution's statement."""

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import factories
import order_support as support
import pytest
from helpers import browser_login as _login
from playwright.sync_api import expect
from stripe_fixtures import localstripe  # noqa: F401

from marketplace.database import db, utcnow
from orders import cart, checkout, payments, services
from orders.models import ProgressUpdate

pytestmark = pytest.mark.browser

OK_CARD = payments.TestCard("4242424242424242", 12, 2030, "123")


def _platform(session):
    """An overdue order and a disputed card order (5,000.00, funds captured on ruling)."""
    now = utcnow()
    p = support.parties(session)
    p.provider_org.name = "Suzhou Patent Agency"
    p.buyer_org.name = "Taicang New Materials Co., Ltd."
    late = support.order(session, p, "in_progress", price=880000,
                         title="Freedom-to-operate analysis for a coating line",
                         due_at=now - timedelta(days=2), accepted_at=now - timedelta(days=12),
                         paid_at=now - timedelta(days=13))
    session.add(ProgressUpdate(order_id=late.id, author_id=p.provider.id, percent=40,
                                       note="Prior-art search done"))
    product = factories.product(session, p.provider_org, prices=(500000,),
                                title="Invention patent filing")
    cart.add(session, p.buyer, product.packages[0].id)
    result = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="card"))
    session.commit()
    disputed = result.checkout.orders[0]
    payment = payments.begin_card_payment(session, disputed)
    session.commit()
    payments.pay_with_test_card(session, payment, OK_CARD)
    session.commit()
    services.accept(session, disputed, p.provider)
    services.dispute(session, disputed, p.buyer, "Only the search report arrived; no filing.")
    return p, late, disputed


def test_staff_monitor_orders_rule_and_settle(app, live_server, page, screenshots,
                                             localstripe):  # noqa: F811
    with app.app_context():
        p, late, disputed = _platform(db.session)
        staff, late_id, late_number = p.staff, late.id, late.number
        disputed_number = disputed.number
        provider_name = p.provider_org.name
    page.set_viewport_size({"width": 1280, "height": 900})
    _login(page, live_server, staff)

    # Dashboard: the overdue order is listed with its reason.
    page.goto(f"{live_server}/staff")
    expect(page.get_by_test_id("figure-overdue")).to_have_text("1")
    expect(page.get_by_test_id("figure-disputes")).to_have_text("1")
    row = page.get_by_test_id("overdue-row")
    expect(row).to_contain_text(late_number)
    expect(row).to_contain_text("due 2 days ago, 40% done")
    expect(page.locator("#chart-gmv")).to_be_visible()
    screenshots(page, "dashboard")

    # Extend its due date: a date in the past is refused, then a later one is accepted.
    row.get_by_test_id("overdue-link").click()
    expect(page).to_have_url(re.compile(rf"/staff/orders/{late_id}$"))
    expect(page.get_by_test_id("order-sla")).to_contain_text("Overdue")
    page.get_by_test_id("intervention-tab-extend").click()
    yesterday = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page.fill("input[name=extend-new_deadline]", yesterday)
    page.fill("textarea[name=extend-reason]", "The lab lost a week to a power cut.")
    page.get_by_test_id("extend-form").get_by_role("button", name="Extend deadline").click()
    expect(page.get_by_text("The new deadline must be in the future.")).to_be_visible()
    screenshots(page, "extend-refused")
    new_due = (utcnow() + timedelta(days=10)).replace(hour=18, minute=0)
    page.fill("input[name=extend-new_deadline]", new_due.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_test_id("extend-form").get_by_role("button", name="Extend deadline").click()
    expect(page.get_by_text("Deadline extended; both parties have been told.")).to_be_visible()
    expect(page.get_by_test_id("order-sla")).to_contain_text("On track")
    expect(page.get_by_test_id("order-sla")).to_contain_text(new_due.strftime("%Y-%m-%d 18:00"))
    expect(page.locator('[data-event="deadline_extended"]')).to_contain_text("power cut")
    screenshots(page, "extended")

    # The dispute, from the progress list.
    page.get_by_test_id("console-nav-progress").click()
    expect(page.get_by_test_id("sla-count-overdue")).to_have_text("0")
    page.select_option("#f-state", "disputed")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("progress-row")).to_have_count(1)
    screenshots(page, "progress-disputes")
    page.get_by_role("link", name=disputed_number).click()
    form = page.get_by_test_id("ruling-form")
    form.get_by_label("Partial refund").check()
    form.get_by_label(re.compile("Refund to the buyer")).fill("5,000.00")
    form.get_by_label(re.compile("Reasons")).fill("The search was delivered; the filing was not.")
    form.get_by_test_id("ruling-submit").click()
    expect(page.get_by_text("A partial refund is more than zero and less than what was paid "
                            "(¥5,000.00)")).to_be_visible()
    screenshots(page, "ruling-refused")
    form = page.get_by_test_id("ruling-form")
    expect(form.get_by_label(re.compile("Refund to the buyer"))).to_be_visible()
    form.get_by_label(re.compile("Refund to the buyer")).fill("3,000.00")
    form.get_by_test_id("ruling-submit").click()
    expect(page.get_by_text("Ruling recorded and the money moved accordingly.")).to_be_visible()
    expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "resolved")
    screenshots(page, "ruled")

    # Settlement of this month: the ruled order is settled, 2,000.00 gross kept.
    page.get_by_test_id("console-nav-settlement").click()
    page.fill("input[name=month]", utcnow().strftime("%Y-%m"))
    page.get_by_test_id("run-settlement").click()
    expect(page.get_by_text(re.compile(r"Settlement batch ST-\d{4}-\d{2} created: 1 order"))
           ).to_be_visible()
    screenshots(page, "settlement-batch")
    page.get_by_role("link", name=provider_name).click()
    expect(page.get_by_test_id("statement-totals")).to_be_visible()
    screenshots(page, "statement")
    with page.expect_download() as info:
        page.get_by_test_id("statement-csv").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert any(disputed_number in row for row in rows)
    assert rows[-1][0] == "TOTAL"

    # Everything staff did is in the audit log (under the console nav's "More").
    page.get_by_test_id("console-nav-more").click()
    page.get_by_test_id("console-nav-audit").click()
    for action in ("order.extend_deadline", "order.resolve"):
        expect(page.locator(f'[data-testid="audit-row"][data-action="{action}"]')).to_have_count(1)
    screenshots(page, "audit-log")
