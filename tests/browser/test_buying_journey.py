"""The whole buying path in real Chromium, against localstripe: an enterprise searches, puts
two services from two institutions in the cart, pays by card with an innovation voucher; one
institution accepts (its card hold is captured into escrow), submits a milestone and
delivers, and the buyer accepts the delivery; the other declines and its hold is
released."""

import re
from datetime import date, timedelta

import factories
import pytest
from helpers import browser_login as login
from helpers import browser_logout as logout
from playwright.sync_api import expect
from sqlalchemy import select
from stripe_fixtures import localstripe  # noqa: F401

from catalog.search.index import reindex_all
from marketplace.database import db
from orders import ledger, vouchers
from orders.models import Order

pytestmark = pytest.mark.browser


def _watch(page, problems):
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", lambda r: r.status >= 500 and problems.append(f"{r.status} {r.url}"))


@pytest.fixture
def market(app, tmp_path, monkeypatch, localstripe):  # noqa: F811
    index_dir = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(index_dir))
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path / "uploads"))
    with app.app_context():
        session = db.session
        agency = factories.provider(session, name="Jinji Lake Patent Agency 金鸡湖专利代理")
        lab = factories.provider(session, name="Kunshan Testing Centre 昆山检测中心",
                                 institution_type="testing_lab")
        factories.product(session, agency, title="Invention patent filing 发明专利申请",
                          prices=(800000, 1500000), voucher_eligible=True)
        factories.product(session, lab, title="Patent product EMC testing 专利产品检测",
                          category_slug="testing", prices=(300000,), tags=["patent", "EMC"])
        buyer_org = factories.enterprise(session, name="Suzhou Nano Materials Co., Ltd.")
        factories.user(session, buyer_org, email="buyer@nano.example")
        factories.user(session, agency, email="agent@jinji.example")
        factories.user(session, lab, email="lab@kunshan.example")
        staff = factories.user(session, role="staff", email="monitor@platform.example")
        programme = vouchers.create_programme(session, staff, vouchers.ProgrammeInput(
            name="SIP innovation vouchers 2026", funder="SIP Science and Technology Bureau",
            budget=50_000_00, valid_from=date.today() - timedelta(days=1),
            valid_until=date.today() + timedelta(days=365), max_share_bp=3000,
            eligible_category_ids=[]))
        vouchers.grant(session, staff, programme, buyer_org, 3_000_00)
        session.commit()
        reindex_all(session, index_dir)
    return localstripe


def open_order(page, base, title_part):
    page.goto(base + "/provider/orders")
    page.get_by_test_id("order-row").filter(has_text=title_part).get_by_role(
        "link", name="Open").click()
    expect(page.get_by_test_id("order-title")).to_contain_text(title_part)


def test_enterprise_buys_from_two_institutions_with_card_and_voucher(
        app, live_server, browser, market, screenshots):
    stripe = market
    problems: list[str] = []
    buyer_context = browser.new_context(viewport={"width": 1280, "height": 900})
    provider_context = browser.new_context(viewport={"width": 1280, "height": 900})
    buyer, desk = buyer_context.new_page(), provider_context.new_page()
    for page in (buyer, desk):
        page.set_default_timeout(15_000)
        _watch(page, problems)

    # --- the buyer finds two services and fills the cart
    login(buyer, live_server, "buyer@nano.example")
    buyer.get_by_test_id("navbar-search").fill("patent")
    buyer.get_by_test_id("navbar-search").press("Enter")
    expect(buyer.get_by_text("Invention patent filing").first).to_be_visible()
    screenshots(buyer, "search-results")
    buyer.get_by_role("link", name=re.compile("Invention patent filing")).first.click()
    buyer.get_by_test_id("package-choice").nth(1).check()  # Standard, ¥15,000
    screenshots(buyer, "product-buy-box")
    buyer.get_by_test_id("add-to-cart").click()
    expect(buyer).to_have_url(re.compile(r"/cart$"))
    buyer.get_by_test_id("navbar-search").fill("patent")
    buyer.get_by_test_id("navbar-search").press("Enter")
    buyer.get_by_role("link", name=re.compile("EMC testing")).first.click()
    buyer.get_by_test_id("add-to-cart").click()
    expect(buyer.get_by_test_id("cart-group")).to_have_count(2)
    expect(buyer.get_by_test_id("cart-total")).to_have_text("¥18,000.00")
    expect(buyer.get_by_test_id("cart-count")).to_have_text("2")
    screenshots(buyer, "cart")

    # --- checkout: voucher, requirements, card
    buyer.get_by_test_id("go-checkout").click()
    buyer.get_by_test_id("voucher-select").select_option(index=1)  # the SIP voucher
    expect(buyer.get_by_test_id("voucher-applied")).to_contain_text("¥3,000.00")
    expect(buyer.get_by_test_id("summary-due")).to_have_text("¥15,000.00")
    buyer.get_by_test_id("requirements").first.fill("Two inventions: a nano-coating and a sensor.")
    expect(buyer.get_by_test_id("card-number")).to_have_value("4242 4242 4242 4242")
    screenshots(buyer, "checkout")
    buyer.get_by_test_id("place-order").click()
    expect(buyer.get_by_test_id("checkout-success")).to_be_visible()
    expect(buyer.get_by_test_id("result-order")).to_have_count(2)
    screenshots(buyer, "checkout-paid")

    with app.app_context():
        orders = {o.provider.name.split()[0]: o for o in db.session.scalars(select(Order))}
        patent, lab = orders["Jinji"], orders["Kunshan"]
        assert patent.voucher_amount == 3_000_00 and patent.amount_due == 12_000_00
        patent_intent = patent.payments[0].stripe_payment_intent_id
        lab_intent = lab.payments[0].stripe_payment_intent_id
    assert stripe.intent(patent_intent)["status"] == "requires_capture"
    assert stripe.intent(lab_intent)["status"] == "requires_capture"

    # --- the patent agency accepts, posts a milestone and delivers
    login(desk, live_server, "agent@jinji.example")
    open_order(desk, live_server, "Invention patent filing")
    expect(desk.get_by_text("Two inventions: a nano-coating")).to_be_visible()
    desk.get_by_test_id("action-accept").click()
    expect(desk.get_by_test_id("order-status")).to_have_text("Accepted")
    desk.get_by_text("Add a milestone").click()
    desk.get_by_label("Milestone").fill("Prior-art search report")
    desk.get_by_label("Share %").fill("40")
    desk.get_by_test_id("milestone-add").click()
    # Issue 13: the institution submits the milestone; the buyer approves it (escrow).
    desk.get_by_test_id("milestone-submit-open").click()
    desk.get_by_test_id("milestones").locator("textarea").fill("Search report attached.")
    desk.get_by_test_id("milestone-submit").click()
    expect(desk.get_by_test_id("order-status")).to_have_text("In progress")
    expect(desk.get_by_test_id("progress-percent")).to_have_text("40%")
    screenshots(desk, "provider-milestone")
    desk.get_by_test_id("deliver-open").click()
    expect(desk.locator("#deliver-form")).to_have_class(re.compile(r"\bshow\b"))
    desk.get_by_label("Delivery note").fill("Both applications filed; receipts attached.")
    expect(desk.get_by_label("Delivery note")).to_have_value(
        "Both applications filed; receipts attached.")
    with desk.expect_navigation():
        desk.get_by_test_id("deliver-submit").click()
    expect(desk.get_by_text("Delivered. The buyer has been asked")).to_be_visible()
    expect(desk.get_by_test_id("order-status")).to_contain_text("Delivered")
    screenshots(desk, "provider-delivered")
    logout(desk)

    # --- the lab declines
    login(desk, live_server, "lab@kunshan.example")
    open_order(desk, live_server, "EMC testing")
    desk.get_by_test_id("action-decline-open").click()
    expect(desk.locator("#action-decline")).to_have_class(re.compile(r"\bshow\b"))
    desk.get_by_test_id("note-decline").fill("Our EMC chamber is booked until March.")
    screenshots(desk, "lab-declining")
    desk.get_by_test_id("action-decline").click()
    expect(desk.get_by_test_id("order-status")).to_have_text("Declined")
    screenshots(desk, "lab-declined")

    # --- the buyer accepts the delivery; the money is captured
    buyer.goto(live_server + "/orders")
    screenshots(buyer, "my-orders")
    buyer.get_by_test_id("order-row").filter(has_text="Invention patent filing").get_by_role(
        "link", name="Open").click()
    expect(buyer.get_by_test_id("delivery")).to_contain_text("Both applications filed")
    expect(buyer.get_by_test_id("milestone")).to_contain_text("Prior-art search report")
    buyer.get_by_test_id("action-complete").click()
    expect(buyer.get_by_test_id("order-status")).to_have_text("Completed")
    expect(buyer.get_by_test_id("money-paid")).to_have_text("¥12,000.00")
    screenshots(buyer, "order-completed")
    assert stripe.intent(patent_intent)["status"] == "succeeded"

    buyer.goto(live_server + "/orders?group=closed")
    buyer.get_by_test_id("order-row").filter(has_text="EMC testing").get_by_role(
        "link", name="Open").click()
    expect(buyer.get_by_test_id("order-status")).to_have_text("Declined")
    expect(buyer.get_by_text("Our EMC chamber is booked until March.").first).to_be_visible()
    screenshots(buyer, "order-declined")
    assert stripe.intent(lab_intent)["status"] == "canceled"

    with app.app_context():
        for order in db.session.scalars(select(Order)):
            assert sum(ledger.balances(db.session, order.id).values()) == 0
        lab_order = db.session.get(Order, lab.id)
        assert lab_order.payments[0].status == "released"
        assert db.session.get(Order, patent.id).payments[0].amount_captured == 12_000_00
    assert problems == []
    buyer_context.close()
    provider_context.close()
