"""The escrow and milestone screens IN CHINESE, on a 390 px phone and a 1280 px desktop: an
order held in escrow with one milestone approved (its share released), one submitted and
waiting for the buyer, one sent back with a reason, as the buyer, the institution and
staff see it. The money panel, the milestone list, the timeline's notes and each side's
actions are in Chinese, inside the screen and without sideways scrolling.

Screenshots of every screen at both widths go to test-artifacts/<test name>/: look at them
for Chinese labels cut off or running out of their boxes."""

import re

import order_support as osup
import pytest
from helpers import browser_in_chinese, fits_on_screen, no_horizontal_scroll
from playwright.sync_api import expect

from marketplace.database import db
from orders import milestones
from orders.models import Order

pytestmark = pytest.mark.browser



@pytest.fixture
def escrow_order(app):
    """An order paid by transfer and accepted, in three milestones (30/30/40 %): the first
    approved and released, the second submitted, the third sent back."""
    with app.app_context():
        s = db.session
        p = osup.parties(s)
        order = osup.funded_order(s, p)
        first, second, third = (m.id for m in order.milestones)
        for milestone_id, note in ((first, "检索报告（含42篇对比文件）"),
                                   (second, "权利要求书初稿"), (third, "申请文件全套")):
            milestones.submit(s, order, p.provider, milestone_id, note)
        s.commit()
        milestones.approve(s, s.get(Order, order.id), p.buyer, first)
        milestones.request_changes(s, s.get(Order, order.id), p.buyer, third,
                                   "请补充两项从属权利要求")
        s.commit()
        paid = s.get(Order, order.id).amount_due
        return {"id": order.id, "buyer": p.buyer.email, "provider": p.provider.email,
                "staff": p.staff.email, "released": f"{paid * 3 // 1000:,}.00",
                "held": f"{paid * 7 // 1000:,}.00"}





def _milestone_list_in_chinese(page, order):
    listed = page.get_by_test_id("milestone")
    expect(listed).to_have_count(3)
    statuses = page.get_by_test_id("milestone-status")
    for status in statuses.all():
        expect(status).to_have_text(re.compile(r"[\u4e00-\u9fff]"))  # a Chinese label
        fits_on_screen(page, status)
    expect(page.get_by_test_id("panel-held")).to_contain_text(order["held"])
    expect(page.get_by_test_id("panel-release")).to_have_count(1)
    expect(page.get_by_test_id("panel-release")).to_contain_text(order["released"])


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_escrow_and_milestones_in_chinese(app, live_server, browser, escrow_order,
                                          screenshots, width):
    order_id = escrow_order["id"]

    context, page = browser_in_chinese(browser, live_server, escrow_order["buyer"], width)
    page.goto(f"{live_server}/orders/{order_id}")
    expect(page.locator("html")).to_have_attribute("lang", re.compile("^zh"))
    expect(page.locator("body")).to_contain_text("平台托管中")
    _milestone_list_in_chinese(page, escrow_order)
    approve = page.get_by_test_id("milestone-approve")
    expect(approve).to_have_count(1)  # only the submitted one waits for the buyer
    expect(approve).to_have_text(re.compile("确认并放款"))
    fits_on_screen(page, approve)
    expect(page.get_by_test_id("milestones")).to_contain_text("请补充两项从属权利要求")
    # The platform's own notes on the timeline are in Chinese too (orders/timeline.py).
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("里程碑“Step 1”已确认；已放款")
    expect(timeline).to_contain_text("被要求修改：请补充两项从属权利要求")
    expect(timeline).not_to_contain_text("released")
    no_horizontal_scroll(page)
    screenshots(page, f"{width}-buyer")
    context.close()

    context, page = browser_in_chinese(browser, live_server, escrow_order["provider"], width)
    page.goto(f"{live_server}/provider/orders/{order_id}")
    _milestone_list_in_chinese(page, escrow_order)
    resubmit = page.get_by_test_id("milestone-submit-open")
    expect(resubmit).to_have_count(1)  # the one sent back may be submitted again
    expect(resubmit).to_have_text(re.compile("提交确认"))
    fits_on_screen(page, resubmit)
    no_horizontal_scroll(page)
    screenshots(page, f"{width}-institution")
    context.close()

    context, page = browser_in_chinese(browser, live_server, escrow_order["staff"], width)
    page.goto(f"{live_server}/staff/orders/{order_id}")
    expect(page.get_by_test_id("panel-held")).to_contain_text(escrow_order["held"])
    expect(page.locator("body")).to_contain_text("平台托管中")
    no_horizontal_scroll(page)
    screenshots(page, f"{width}-staff")
    context.close()
