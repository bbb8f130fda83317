"""The buying journey IN CHINESE, on a 390 px phone and a 1280 px desktop: an enterprise
member who never chose a language but whose browser asks for Chinese (the ``lang`` cookie)
adds a packaged service to the cart, checks out by corporate bank transfer (the button and
the note say the order is paid by transfer and confirmed when it arrives: nothing is "paid"
or "held" yet), finds the order in a list that keeps status and amount on screen, and asks an
institution for a quote, which the institution then sees as "已报价" (sent), not "received".

Screenshots of every step at both widths go to test-artifacts/<test name>/: look at them for
Chinese labels cut off or running out of their boxes."""

import re

import factories
import pytest
from helpers import browser_in_chinese, fits_on_screen, no_horizontal_scroll
from playwright.sync_api import expect

from marketplace.database import db

pytestmark = pytest.mark.browser



@pytest.fixture
def market(app):
    with app.app_context():
        session = db.session
        agency = factories.provider(session, name="金鸡湖专利代理有限公司")
        filing = factories.product(session, agency, title="发明专利申请代理（含实质审查答复）",
                                   prices=(800000, 1500000))
        analysis = factories.product(session, agency, title="专利侵权风险分析", mode="quote")
        buyer_org = factories.enterprise(session, name="苏州纳米材料科技有限公司")
        factories.user(session, buyer_org, email="buyer@nano.example")
        factories.user(session, agency, email="agent@jinji.example")
        session.commit()
        return {"filing": filing.id, "analysis": analysis.id}





@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_buying_in_chinese_by_bank_transfer(app, live_server, browser, market, screenshots,
                                            width):
    context, page = browser_in_chinese(browser, live_server, "buyer@nano.example", width)

    page.goto(live_server + "/")
    expect(page.locator("html")).to_have_attribute("lang", re.compile("^zh"))
    page.goto(f"{live_server}/products/{market['filing']}")
    expect(page.get_by_test_id("add-to-cart")).to_have_text(re.compile("加入购物车"))
    page.get_by_test_id("add-to-cart").click()
    expect(page).to_have_url(re.compile(r"/cart$"))
    expect(page.locator("h1")).to_have_text("购物车")
    expect(page.get_by_test_id("go-checkout")).to_contain_text("去结算")
    no_horizontal_scroll(page)
    screenshots(page, f"{width}-cart")

    page.get_by_test_id("go-checkout").click()
    expect(page.locator("h1")).to_have_text("结算")
    button = page.get_by_test_id("place-order")
    expect(button).to_have_text(re.compile(r"^\s*提交订单并支付 ¥8,000.00\s*$"),
                                use_inner_text=True)  # card, the first method
    page.get_by_test_id("method-bank_transfer").check()
    expect(button).to_have_text(re.compile(r"^\s*提交订单 · 银行转账支付\s*$"), use_inner_text=True)
    expect(page.get_by_test_id("place-order-note-bank_transfer")).to_contain_text(
        "转账到账后我们将确认订单")
    expect(page.get_by_test_id("place-order-note-card")).to_be_hidden()
    fits_on_screen(page, button)
    no_horizontal_scroll(page)
    screenshots(page, f"{width}-checkout-bank-transfer")
    button.click()

    expect(page.get_by_test_id("checkout-attention")).to_contain_text("待支付")
    expect(page.get_by_test_id("bank-reference")).to_be_visible()
    no_horizontal_scroll(page)
    screenshots(page, f"{width}-checkout-result")

    page.goto(live_server + "/orders")
    expect(page.locator("h1")).to_have_text("我的订单")
    row = page.get_by_test_id("order-row").first
    status = row.get_by_test_id("order-status")
    expect(status).to_have_text("待支付")
    fits_on_screen(page, status)
    fits_on_screen(page, row.locator(".order-cell-amount"))
    no_horizontal_scroll(page)
    screenshots(page, f"{width}-my-orders")

    row.get_by_role("link", name="查看").click()
    expect(page.get_by_test_id("bank-details")).to_contain_text("付款识别码")
    no_horizontal_scroll(page)
    screenshots(page, f"{width}-order-awaiting-transfer")
    context.close()


def test_quote_in_chinese_is_sent_for_the_institution_and_received_for_the_buyer(
        app, live_server, browser, market, screenshots):
    buyer_context, buyer = browser_in_chinese(browser, live_server, "buyer@nano.example",
                                                 "phone")
    buyer.goto(f"{live_server}/products/{market['analysis']}")
    buyer.get_by_test_id("request-quote").click()
    expect(buyer.locator("h1")).to_have_text("询价")
    buyer.locator("textarea").first.fill("我们准备推出一款纳米涂层产品，需要评估其在国内的专利侵权风险。")
    screenshots(buyer, "phone-quote-request")
    buyer.get_by_test_id("send-quote-request").click()
    expect(buyer.get_by_test_id("quote-request-status")).to_have_text("待报价")

    desk_context, desk = browser_in_chinese(browser, live_server, "agent@jinji.example",
                                               "desktop")
    desk.goto(live_server + "/provider/quotes")
    desk.get_by_test_id("quote-request-row").first.get_by_role("link", name="报价").click()
    desk.get_by_label("价格").fill("12000")
    desk.get_by_label("交付日期").fill("2030-01-31")
    screenshots(desk, "desktop-quote-answer")
    desk.get_by_test_id("send-quote").click()
    expect(desk.get_by_test_id("quote-request-status")).to_have_text("已报价")
    no_horizontal_scroll(desk)
    screenshots(desk, "desktop-quote-sent")

    buyer.reload()
    expect(buyer.get_by_test_id("quote-request-status")).to_have_text("已收到报价")
    expect(buyer.get_by_test_id("accept-quote")).to_have_text("接受并下单")
    no_horizontal_scroll(buyer)
    screenshots(buyer, "phone-quote-received")
    buyer_context.close()
    desk_context.close()
