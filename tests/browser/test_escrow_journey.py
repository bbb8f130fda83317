"""Issue 13, "Done means", in real Chromium over simulated weeks (a frozen clock moved by
time-machine): an order with three milestones paid by card (localstripe). The card is
captured when the institution accepts; milestone 1 is approved by the buyer; milestone 2 by
the timer 14 days after its submission (the buyer told 3 days before); milestone 3 is
disputed and split by a staff ruling. The statements of October and November show the
releases and the rest; the card was captured once and refunded once. The money panel is
screenshotted at each step (test-artifacts/test_three_milestones_over_two_months/)."""

from datetime import UTC, datetime, timedelta

import factories
import order_support as osup
import pytest
import time_machine
from helpers import browser_login
from playwright.sync_api import expect
from sqlalchemy import select
from stripe_fixtures import localstripe  # noqa: F401

from marketplace.database import db
from orders import cart, checkout, commission, milestones, payments, services, timers
from orders.models import LedgerEntry, Milestone, Order, SettlementItem

pytestmark = pytest.mark.browser

PRICE = 1_000_000  # ¥10,000.00, commission 10 %
START = datetime(2026, 10, 5, 2, 0, tzinfo=UTC)  # 10:00 in Suzhou, Monday 5 October


def _as(page, base, user):
    page.context.clear_cookies()
    browser_login(page, base, user)


def test_three_milestones_over_two_months(app, live_server, page, screenshots,
                                          localstripe):  # noqa: F811
    page.set_viewport_size({"width": 1280, "height": 1000})
    traveller = time_machine.travel(START, tick=True)
    clock = traveller.start()
    try:
        with app.app_context():
            s = db.session
            p = osup.parties(s)
            product = factories.product(s, p.provider_org, prices=(PRICE,))
            commission.set_provider_rate(s, p.provider_org.id, 1000)
            cart.add(s, p.buyer, product.packages[0].id)
            placed = checkout.place_orders(s, p.buyer, checkout.CheckoutInput(
                token=checkout.new_token(), payment_method="card"))
            s.commit()
            order = placed.checkout.orders[0]
            payment = payments.begin_card_payment(s, order)
            s.commit()
            payments.pay_with_test_card(s, payment, payments.TestCard(
                "4242424242424242", 12, 2030, "123"))
            order_id, intent_id = order.id, payment.stripe_payment_intent_id
            assert order.status == "paid"
        url = f"{live_server}/provider/orders/{order_id}"

        # The institution accepts: the card is captured into escrow.
        _as(page, live_server, p.provider)
        page.goto(url)
        page.get_by_test_id("action-accept").click()
        expect(page.locator(".alert-success")).to_be_visible()
        expect(page.get_by_test_id("panel-held")).to_contain_text("10,000.00")
        assert localstripe.intent(intent_id)["status"] == "succeeded"
        with app.app_context():
            s = db.session
            order = s.get(Order, order_id)
            for title, share in (("Prior-art search", 3000), ("Drafting", 3000),
                                 ("Filing and first office action", 4000)):
                services.add_milestone(s, order, p.provider, title, share, None)
            s.commit()
            first, second, third = (m.id for m in order.milestones)
        screenshots(page, "accepted-held")

        # Day 3: milestone 1 submitted (institution) and approved (buyer).
        clock.move_to(START + timedelta(days=3))
        page.goto(url)
        page.get_by_test_id("milestone-submit-open").first.click()
        page.fill(f"textarea[name=ms{first}-note]", "Search report with 42 references.")
        page.get_by_test_id("milestone-submit").first.click()
        expect(page.locator(".alert-success")).to_contain_text("Milestone submitted")
        _as(page, live_server, p.buyer)
        page.goto(f"{live_server}/orders/{order_id}")
        page.get_by_test_id("milestone-approve").click()
        expect(page.locator(".alert-success")).to_contain_text("¥3,000.00 released")
        expect(page.get_by_test_id("panel-release")).to_have_count(1)
        screenshots(page, "milestone-1-approved")

        # Day 6: milestone 2 submitted; the buyer stays silent. Day 17 the timer warns,
        # day 20 it approves.
        clock.move_to(START + timedelta(days=6))
        with app.app_context():
            s = db.session
            milestones.submit(s, s.get(Order, order_id), p.provider, second, "Claims drafted.")
            s.commit()
            report = timers.run(s, START + timedelta(days=17, hours=1), milestone_days=14)
            assert report.milestone_notices == 1
        clock.move_to(START + timedelta(days=20, hours=1))
        with app.app_context():
            report = timers.run(db.session, START + timedelta(days=20, hours=1),
                                milestone_days=14)
            assert len(report.milestones_approved) == 1
            assert db.session.get(Milestone, second).approved_by == "timer"
        _as(page, live_server, p.buyer)
        page.goto(f"{live_server}/orders/{order_id}")
        expect(page.get_by_test_id("panel-release")).to_have_count(2)
        expect(page.get_by_test_id("milestones").get_by_text(
            "Approved automatically after 14 days")).to_be_visible()
        screenshots(page, "milestone-2-auto-approved")

        # November: milestone 3 submitted, the buyer disputes it, staff split what is held.
        clock.move_to(datetime(2026, 11, 10, 2, 0, tzinfo=UTC))
        with app.app_context():
            s = db.session
            milestones.submit(s, s.get(Order, order_id), p.provider, third, "Filed.")
            s.commit()
        page.goto(f"{live_server}/orders/{order_id}")
        page.get_by_test_id("action-dispute-open").click()
        page.get_by_test_id("note-dispute").fill("The filing misses two of the agreed claims.")
        page.get_by_test_id("dispute-milestone").select_option(label="Filing and first office action")
        page.get_by_test_id("action-dispute").click()
        expect(page.locator(".alert-success")).to_be_visible()
        clock.move_to(datetime(2026, 11, 12, 2, 0, tzinfo=UTC))
        _as(page, live_server, p.staff)
        page.goto(f"{live_server}/staff/orders/{order_id}")
        form = page.get_by_test_id("ruling-form")
        form.locator("input[value=partial]").check()
        form.locator("input[name=ruling-refund]").fill("1000")
        form.locator("textarea[name=ruling-note]").fill("Two claims missing: a quarter back.")
        page.get_by_test_id("ruling-submit").click()
        expect(page.locator(".alert-success")).to_contain_text("Ruling recorded")
        expect(page.get_by_test_id("panel-refunded")).to_contain_text("1,000.00")
        expect(page.get_by_test_id("panel-held")).to_contain_text("0.00")
        screenshots(page, "money-panel-staff")
        assert localstripe.intent(intent_id)["status"] == "succeeded"
        with app.app_context():
            (card,) = db.session.get(Order, order_id).payments
            assert (card.amount_captured, card.amount_refunded) == (PRICE, 100000)
            captures = db.session.scalars(select(LedgerEntry.amount).where(
                LedgerEntry.order_id == order_id, LedgerEntry.kind == "capture",
                LedgerEntry.account == "platform_cash")).all()
            assert captures == [PRICE]
        refunds = localstripe.client.refunds.list(params={"payment_intent": intent_id}).data
        assert [r.amount for r in refunds] == [100000]  # captured once, refunded once

        # December: staff settle October (the two releases) and November (the rest).
        clock.move_to(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))
        _as(page, live_server, p.staff)
        for month, lines, releases in (("2026-10", 2, 2), ("2026-11", 1, 0)):
            page.goto(f"{live_server}/staff/settlement")
            page.fill("input[name=month]", month)
            page.get_by_test_id("run-settlement").click()
            expect(page.get_by_text(f"Settlement batch ST-{month} created")).to_be_visible()
            page.get_by_role("link", name=p.provider_org.name).click()
            expect(page.get_by_test_id("statement-order")).to_have_count(lines)
            expect(page.get_by_test_id("statement-release")).to_have_count(releases)
            screenshots(page, f"statement-{month}")
        with app.app_context():
            items = db.session.scalars(select(SettlementItem).where(
                SettlementItem.order_id == order_id).order_by(SettlementItem.id)).all()
            assert [(i.kind, i.gross, i.refunds, i.fee, i.net) for i in items] == [
                ("release", 300000, 0, 30000, 270000),
                ("release", 300000, 0, 30000, 270000),
                ("order", 400000, 100000, 30000, 270000)]
    finally:
        traveller.stop()
