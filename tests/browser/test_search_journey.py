"""An enterprise buyer searches in Chinese, narrows with two filters, sorts, pages, collects
a listing and compares two, in real Chromium."""

import re

import factories
import pytest
from playwright.sync_api import expect

from catalog.search.index import reindex_all
from marketplace.database import db

pytestmark = pytest.mark.browser

TOPICS = ["发明专利申请", "实用新型专利", "外观设计专利", "专利检索报告", "专利无效宣告", "专利导航分析",
          "PCT国际专利", "专利挖掘", "专利布局", "专利年费管理", "专利侵权分析", "专利许可谈判"]
ENGLISH = ["Invention patent filing", "Utility model filing", "Design patent filing",
           "Patent search report", "Patent invalidation", "Patent navigation study",
           "PCT application", "Patent mining", "Patent portfolio planning",
           "Patent annuity management", "Infringement analysis", "Licence negotiation"]
SUBCATEGORIES = ["patent-application", "patent-search", "ip-litigation", "ip-strategy"]


def _watch(page, problems):
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", lambda r: r.status >= 500 and problems.append(f"{r.status} {r.url}"))


@pytest.fixture
def shop(app, tmp_path, monkeypatch):
    index_dir = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(index_dir))
    monkeypatch.setitem(app.config, "PAGE_SIZE", 4)
    with app.app_context():
        session = db.session
        agency = factories.provider(session, name="苏州金鸡湖知识产权代理有限公司 Jinji Lake IP")
        lab = factories.provider(session, name="昆山检测认证中心 Kunshan Testing",
                                 institution_type="testing_lab")
        for n, (zh, en) in enumerate(zip(TOPICS, ENGLISH, strict=True)):
            factories.product(session, agency, title=f"{zh} · {en}",
                              summary=f"{zh}服务，专业代理人全程办理。 {en} handled end to end.",
                              category_slug=SUBCATEGORIES[n % 4], voucher_eligible=n % 4 != 3,
                              prices=(150000 + 70000 * ((n * 5) % 12), 2000000))
        for n in range(3):
            factories.product(session, lab, title=f"专利产品检测报告 {n} · Testing for patented products",
                              category_slug="testing", voucher_eligible=True)
        buyer_org = factories.enterprise(session, name="苏州纳米科技有限公司")
        factories.user(session, buyer_org, email="buyer@nano.example")
        session.commit()
        reindex_all(session, index_dir)


def test_buyer_searches_filters_sorts_pages_collects_and_compares(live_server, page, shop,
                                                                  screenshots):
    problems: list[str] = []
    _watch(page, problems)
    page.set_default_timeout(10_000)
    page.set_viewport_size({"width": 1280, "height": 900})

    # --- Log in as an enterprise member.
    page.goto(live_server + "/login")
    form = page.get_by_test_id("login-form")
    form.get_by_label("Email").fill("buyer@nano.example")
    form.get_by_label("Password").fill(factories.PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/account$"))

    # --- Search in Chinese from the navbar on any page.
    page.get_by_test_id("navbar-search").fill("专利")
    page.get_by_test_id("navbar-search").press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=%E4%B8%93%E5%88%A9"))
    expect(page.get_by_test_id("result-count")).to_contain_text("15 services")
    expect(page.get_by_test_id("search-hit").first.locator("mark").first).to_have_text("专利")
    screenshots(page, "search-chinese")

    # --- Two filters: a category, then voucher eligibility; facet counts follow.
    page.locator('[data-facet="category"][data-value="ip"]').click()
    expect(page).to_have_url(re.compile(r"category=ip"))
    expect(page.get_by_test_id("result-count")).to_contain_text("12 services")
    page.locator('[data-facet="voucher"]').click()
    expect(page).to_have_url(re.compile(r"category=ip.*voucher=1|voucher=1.*category=ip"))
    expect(page.get_by_test_id("result-count")).to_contain_text("9 services")
    expect(page.get_by_test_id("active-filters")).to_contain_text("Intellectual property")
    screenshots(page, "two-filters")

    # --- Sort by price, cheapest first (the select submits itself).
    page.get_by_test_id("sort-select").select_option("price_asc")
    expect(page).to_have_url(re.compile(r"sort=price_asc"))
    prices = page.get_by_test_id("search-hit").get_by_test_id("price").all_inner_texts()
    amounts = [float(re.sub(r"[^\d.]", "", text)) for text in prices]
    assert amounts == sorted(amounts) and len(amounts) == 4
    screenshots(page, "sorted-by-price")

    # --- Page 2 keeps the query, the filters and the sort in its URL.
    first_page = page.get_by_test_id("hit-title").all_inner_texts()
    page.get_by_role("link", name="2", exact=True).click()
    expect(page).to_have_url(re.compile(r"page=2"))
    for part in ("q=", "category=ip", "voucher=1", "sort=price_asc"):
        assert part in page.url
    second_page = page.get_by_test_id("hit-title").all_inner_texts()
    assert len(second_page) == 4 and not set(first_page) & set(second_page)
    more = [float(re.sub(r"[^\d.]", "", t)) for t in
            page.get_by_test_id("search-hit").get_by_test_id("price").all_inner_texts()]
    assert min(more) >= max(amounts)
    screenshots(page, "page-two")

    # --- Collect the first listing: the star swaps in place, no page load.
    page.evaluate("window.__noReload = true")
    hit = page.get_by_test_id("search-hit").first
    star = hit.get_by_test_id("favourite-button")
    expect(star).to_have_attribute("data-state", "off")
    star.click()
    expect(hit.get_by_test_id("favourite-button")).to_have_attribute("data-state", "on")
    assert page.evaluate("window.__noReload") is True
    collected = hit.get_by_test_id("hit-title").inner_text()
    screenshots(page, "collected")

    # --- Compare two listings; the navbar count follows without a reload.
    hits = page.get_by_test_id("search-hit")
    hits.nth(0).get_by_test_id("compare-button").click()
    expect(hits.nth(0).get_by_test_id("compare-button")).to_have_attribute("data-state", "on")
    hits.nth(1).get_by_test_id("compare-button").click()
    expect(hits.nth(1).get_by_test_id("compare-button")).to_have_attribute("data-state", "on")
    expect(page.get_by_test_id("compare-tray")).to_contain_text("2")
    assert page.evaluate("window.__noReload") is True
    compared = [hits.nth(i).get_by_test_id("hit-title").inner_text() for i in range(2)]
    page.get_by_test_id("compare-tray").click()
    expect(page).to_have_url(re.compile(r"/compare$"))
    table = page.get_by_test_id("compare-table")
    expect(page.get_by_test_id("compare-column")).to_have_count(2)
    for title in compared:
        expect(table).to_contain_text(title)
    expect(table).to_contain_text("No reviews yet")
    expect(table.get_by_test_id("credibility-badge")).to_have_count(2)
    screenshots(page, "compare")

    # --- The collected listing waits on the favourites page.
    page.get_by_test_id("favourites-link").click()
    expect(page.get_by_test_id("favourite-product")).to_have_count(1)
    expect(page.get_by_test_id("favourite-product")).to_contain_text(collected)
    screenshots(page, "favourites")
    assert not problems, problems
