"""A visitor's searches show up in the staff search analytics; staff turn a query that found
nothing into a synonym from there, and the same search then finds listings, in real
Chromium (issue 18)."""

import re

import factories
import pytest
from playwright.sync_api import expect

from catalog.search.index import reindex_all
from marketplace.database import db

pytestmark = pytest.mark.browser


@pytest.fixture
def shop(app, tmp_path, monkeypatch):
    index_dir = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(index_dir))
    with app.app_context():
        session = db.session
        agency = factories.provider(session, name="苏州金鸡湖知识产权代理有限公司")
        for title in ("知识产权质押融资辅导 · IP-pledge financing support",
                      "专利申请代理 · Patent filing"):
            factories.product(session, agency, title=title, category_slug="ip-pledge")
        factories.user(session, role="staff", email="monitor@platform.example")
        session.commit()
        reindex_all(session, index_dir)


def test_staff_turn_a_zero_result_query_into_a_synonym(live_server, page, browser, shop,
                                                       screenshots):
    page.set_default_timeout(10_000)
    page.set_viewport_size({"width": 1280, "height": 900})
    # A visitor (own browser context) searches by pinyin, then for an abbreviation the
    # catalogue does not know yet.
    visitor = browser.new_context(locale="zh-CN").new_page()
    visitor.goto(live_server + "/search?q=zhuanli")
    expect(visitor.get_by_test_id("hit-title").first).to_contain_text("专利申请代理")
    visitor.get_by_test_id("hit-title").first.click()
    expect(visitor).to_have_url(re.compile(r"/products/\d+|/product"))
    visitor.goto(live_server + "/search?q=知产贷")
    expect(visitor.get_by_test_id("search-hit")).to_have_count(0)

    page.goto(live_server + "/login")
    form = page.get_by_test_id("login-form")
    form.get_by_label("Email").fill("monitor@platform.example")
    form.get_by_label("Password").fill(factories.PASSWORD)
    form.get_by_role("button", name="Log in").click()
    page.goto(live_server + "/staff")
    page.get_by_test_id("console-nav-more").click()
    page.get_by_test_id("console-nav-search").click()
    top = page.get_by_test_id("report-top")
    expect(top).to_contain_text("zhuanli")
    expect(top.get_by_test_id("top-row").filter(has_text="zhuanli")).to_contain_text("zh")
    zero = page.get_by_test_id("report-zero")
    expect(zero).to_contain_text("知产贷")
    screenshots(page, "analytics")

    row = zero.get_by_test_id("zero-row").filter(has_text="知产贷")
    row.get_by_placeholder(re.compile("means")).fill("知识产权质押")
    row.get_by_role("button", name="Add as synonym").click()
    expect(page.locator(".alert-success")).to_contain_text("知产贷")

    visitor.goto(live_server + "/search?q=知产贷")
    expect(visitor.get_by_test_id("search-hit").first).to_contain_text("知识产权质押融资辅导")
    page.get_by_role("link", name=re.compile("Synonyms")).click()
    expect(page.get_by_test_id("synonym-group")).to_have_count(1)
    expect(page.get_by_test_id("synonym-group").locator("textarea")).to_have_value(
        "知产贷 | 知识产权质押")
