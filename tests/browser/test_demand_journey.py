"""The demand side in real Chromium, against localstripe: an enterprise publishes a need in
Chinese; staff approve it; the matched institutions include the FTO agency and the page says
why; two institutions send proposals (one revises); the enterprise compares, awards one,
pays by card, and the order runs to completion; the other institution sees "not selected"."""

import re
from datetime import date, timedelta

import demand_support as ds
import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from stripe_fixtures import localstripe  # noqa: F401

from catalog.search.index import reindex_all
from demand.models import Need
from marketplace.database import db
from orders.models import Order

pytestmark = pytest.mark.browser


@pytest.fixture
def world(app, tmp_path, monkeypatch, localstripe):  # noqa: F811
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(tmp_path / "search-index"))
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path / "uploads"))
    with app.app_context():
        w = ds.world(db.session, app, index=False)
        emails = {name: getattr(w, name).email for name in
                  ("buyer", "staff", "fto_user", "filer_user")}
        ids = {"fto": w.fto.id, "filer": w.filer.id,
               "category": ds.category_id(db.session, "ip-strategy")}
        reindex_all(db.session, app.config["SEARCH_INDEX_DIR"])
    return emails, ids


def login(page, base, email):
    import factories

    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name=re.compile("Log in")).click()
    expect(page.get_by_test_id("account-menu")).to_be_visible()


def logout(page):
    page.get_by_test_id("account-menu").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def propose(page, price: str, days: int):
    today = date.today()
    page.get_by_label("Price (¥)").fill(price)
    page.get_by_label("Delivery date").fill((today + timedelta(days=days)).isoformat())
    page.get_by_label("Milestone 1 title").fill("检索与权利要求对比")
    page.get_by_label("Milestone 1 share in percent").fill("40")
    page.get_by_label("Milestone 1 due date").fill((today + timedelta(days=days // 2)).isoformat())
    page.get_by_label("Milestone 2 title").fill("FTO 意见书")
    page.get_by_label("Milestone 2 share in percent").fill("60")
    page.get_by_label("Milestone 2 due date").fill((today + timedelta(days=days)).isoformat())
    page.get_by_label("Cover note").fill("我们去年完成了 40 份欧洲 FTO 报告。")
    page.get_by_test_id("send-proposal").click()


def test_need_to_completed_order(app, live_server, page, world, screenshots):
    emails, ids = world
    base = live_server
    page.set_default_timeout(15_000)

    # --- the enterprise publishes a need in Chinese
    login(page, base, emails["buyer"])
    page.goto(base + "/needs")
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    page.get_by_test_id("new-need").click()
    page.get_by_label("Title").fill("欧盟上市前的专利自由实施分析 (FTO)")
    page.get_by_label(re.compile("^Need description")).fill(
        "扫地机器人进入欧洲市场前，需要一份**自由实施分析** (freedom-to-operate) 报告，覆盖欧洲专利。")
    page.get_by_label("Category").select_option(str(ids["category"]))
    page.get_by_role("radio", name="Range").check()
    page.get_by_label("Amount / minimum (¥)").fill("30,000")
    page.get_by_label("Maximum (¥, ranges only)").fill("80,000")
    page.get_by_label("Proposals due (date)").fill((date.today() + timedelta(days=10)).isoformat())
    page.get_by_label("Wanted delivery").fill((date.today() + timedelta(days=60)).isoformat())
    page.get_by_label("Region").select_option("suzhou_sip")
    screenshots(page, "need-form")
    page.get_by_test_id("submit-need").click()
    expect(page.get_by_test_id("status-submitted")).to_be_visible()
    screenshots(page, "need-submitted")
    logout(page)

    # --- staff approve it; matching explains the FTO agency's place
    login(page, base, emails["staff"])
    page.goto(base + "/staff/needs")
    page.get_by_role("link", name=re.compile("自由实施分析")).first.click()
    page.get_by_test_id("approve-need").click()
    expect(page.get_by_test_id("status-open")).to_be_visible()
    match = page.get_by_test_id(f"match-{ids['fto']}")
    expect(match).to_be_visible()
    match.get_by_text("Why this institution").click()
    expect(match.get_by_test_id("score-parts")).to_contain_text("Category fit")
    expect(match.get_by_test_id("score-parts")).to_contain_text("Freedom-to-operate")
    screenshots(page, "matches-explained")
    logout(page)

    # --- the FTO agency proposes, then revises its price
    login(page, base, emails["fto_user"])
    page.goto(base + "/demand?tab=invited")
    page.get_by_role("link", name=re.compile("自由实施分析")).first.click()
    expect(page.get_by_test_id("invited-banner")).to_be_visible()
    propose(page, "60,000", 40)
    expect(page.get_by_test_id("own-proposal")).to_contain_text("¥60,000.00")
    propose(page, "55,000", 40)
    expect(page.get_by_test_id("own-proposal")).to_contain_text("¥55,000.00")
    screenshots(page, "proposal-revised")
    logout(page)

    # --- the filing office finds it on the demand board and proposes
    login(page, base, emails["filer_user"])
    page.goto(base + "/demand")
    page.get_by_test_id("board-search").fill("自由实施")
    page.get_by_test_id("board-search").press("Enter")
    page.get_by_role("link", name=re.compile("自由实施分析")).first.click()
    propose(page, "40,000", 45)
    expect(page.get_by_test_id("own-proposal")).to_contain_text("¥40,000.00")
    logout(page)

    # --- the enterprise compares and awards the FTO agency, then pays by card
    login(page, base, emails["buyer"])
    page.goto(base + "/needs")
    page.get_by_role("link", name=re.compile("自由实施分析")).click()
    table = page.get_by_test_id("compare-proposals")
    expect(table).to_contain_text("¥55,000.00")
    expect(table).to_contain_text("¥40,000.00")
    expect(table).to_contain_text("(revised")
    screenshots(page, "proposals-side-by-side")
    with app.app_context():
        need = db.session.scalar(select(Need))
        winner = next(p for p in need.proposals if p.provider_org_id == ids["fto"])
        winner_id = winner.id
    page.get_by_test_id(f"award-{winner_id}").click()
    expect(page).to_have_url(re.compile(r"/orders/\d+/pay$"))
    page.get_by_test_id("method-card").check()
    page.get_by_test_id("pay-now").click()
    expect(page.get_by_test_id("order-status")).to_contain_text("Paid")
    screenshots(page, "awarded-and-paid")

    with app.app_context():
        order = db.session.scalar(select(Order))
        order_id, number = order.id, order.number
        assert order.kind == "quote" and order.subtotal == 55_000_00

    # --- the buyer signs the technology contract the award made (work waits for both)
    import factories

    page.goto(f"{base}/orders/{order_id}")
    page.get_by_test_id("contract-link").click()
    page.get_by_label("Your account password").fill(factories.PASSWORD)
    page.get_by_test_id("sign-contract").click()
    expect(page.get_by_test_id("contract-status")).to_be_visible()
    logout(page)

    # --- the FTO agency accepts, signs, reaches both milestones and delivers
    login(page, base, emails["fto_user"])
    page.goto(f"{base}/provider/orders/{order_id}")
    page.get_by_test_id("action-accept").click()
    expect(page.get_by_test_id("order-status")).to_have_text("Accepted")
    page.get_by_test_id("contract-link").click()
    page.get_by_label("Your account password").fill(factories.PASSWORD)
    page.get_by_test_id("sign-contract").click()
    expect(page.get_by_test_id("contract-status")).to_contain_text("Signed by both sides")
    page.goto(f"{base}/provider/orders/{order_id}")
    # Issue 13: each milestone is submitted (note) for the buyer's approval.
    for note in ("检索完成。", "分析完成。"):
        page.get_by_test_id("milestone-submit-open").first.click()
        page.get_by_test_id("milestones").locator("textarea:visible").first.fill(note)
        page.get_by_test_id("milestone-submit").first.click()
        expect(page.get_by_test_id("order-status")).to_have_text("In progress")
    page.get_by_test_id("deliver-open").click()
    page.get_by_label("Delivery note").fill("FTO 意见书已上传。")
    with page.expect_navigation():
        page.get_by_test_id("deliver-submit").click()
    expect(page.get_by_test_id("order-status")).to_contain_text("Delivered")
    logout(page)

    # --- the enterprise accepts the delivery
    login(page, base, emails["buyer"])
    page.goto(f"{base}/orders/{order_id}")
    page.get_by_test_id("action-complete").click()
    expect(page.get_by_test_id("order-status")).to_have_text("Completed")
    screenshots(page, "order-completed")
    page.goto(base + "/needs")
    expect(page.get_by_test_id("status-awarded")).to_be_visible()
    logout(page)

    # --- the other institution sees "not selected"
    login(page, base, emails["filer_user"])
    page.goto(base + "/demand?tab=invited")
    with app.app_context():
        need_id = db.session.scalar(select(Need.id))
    page.goto(f"{base}/demand/{need_id}")
    expect(page.get_by_test_id("not-selected")).to_be_visible()
    screenshots(page, "not-selected")
    assert number
